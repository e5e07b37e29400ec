-- Kaiwa (CMD-02): agents sign in with their Kaiwa XMPP login, "<portal>|<user name>"
-- (or "<portal>\<user name>") and the password they set in Kaiwa. Prosody asks the
-- Kaiwa XMPP bridge (kaiwa_auth_url, on the loopback, with kaiwa_auth_secret) and keeps
-- no accounts of its own. Used as: authentication = "kaiwa".
local new_sasl = require "util.sasl".new;
local http = require "net.http";
local async = require "util.async";
local json = require "util.json";

local url = module:get_option_string("kaiwa_auth_url");
local secret = module:get_option_string("kaiwa_auth_secret");
local provider = {};

local function check(username, password)
	local wait, done = async.waiter();
	local ok = false;
	http.request(url, {
		method = "POST";
		body = json.encode({ username = username, password = password, host = module.host });
		headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. secret };
	}, function (_, code)
		ok = (code == 200);
		done();
	end);
	wait();
	return ok;
end

function provider.test_password(username, password)
	if check(username, password) then return true; end
	return nil, "Auth failed. Invalid username or password.";
end

-- Kaiwa agents are "<portal>|<user name>" (or with a backslash).
function provider.user_exists(username)
	return username:find("[|\\]") ~= nil;
end

function provider.users() return function() return nil; end; end
function provider.set_password() return nil, "Passwords are set in Kaiwa"; end
function provider.create_user() return nil, "Accounts are Kaiwa agents"; end
function provider.delete_user() return nil, "Accounts are Kaiwa agents"; end

function provider.get_sasl_handler()
	return new_sasl(module.host, {
		plain_test = function(_, username, password)
			return check(username, password), true;
		end;
	});
end

module:provides("auth", provider);
