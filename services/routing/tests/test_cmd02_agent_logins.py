"""CMD-02 in routing: the chat user name agents sign in with from an XMPP client (6-30
letters, digits, '_' and '.', unique in the portal, seed 003's availability texts), the
XMPP password (scrypt hash), and the bridge's check of both (service only)."""

from __future__ import annotations

import asyncpg
import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kaiwa.routing.v1 import routing_pb2 as pb

from kaiwa_routing.domain.logins import hash_password, password_matches, split_login, user_name_problem
from tests.fixtures import auth, status_of

AVAILABLE, NOT_AVAILABLE = "入力したユーザー名は利用可能です", "入力したユーザー名は利用できません"


async def test_cmd02_user_name_availability_and_choice(kit):
    aiko = await kit.agent("aiko@example.com", [], name="Aiko")
    ben = await kit.agent("ben@example.com", [], name="Ben")
    check = await kit.stub.CheckUserName(pb.CheckUserNameRequest(user_name="Aiko.Sato"), metadata=kit.as_agent(aiko.id))
    assert (check.user_name, check.available, check.message, check.reason) == ("aiko.sato", True, AVAILABLE, "")
    login = await kit.stub.SetUserName(pb.SetUserNameRequest(user_name="Aiko.Sato"), metadata=kit.as_agent(aiko.id))
    assert (login.agent_id, login.user_name, login.has_password, login.email) == (aiko.id, "aiko.sato", False, "aiko@example.com")

    # Taken, whatever the case; still "available" to its own agent.
    taken = await kit.stub.CheckUserName(pb.CheckUserNameRequest(user_name="AIKO.sato"), metadata=kit.as_agent(ben.id))
    assert (taken.available, taken.message, taken.reason) == (False, NOT_AVAILABLE, "taken")
    mine = await kit.stub.CheckUserName(pb.CheckUserNameRequest(user_name="aiko.sato"), metadata=kit.as_agent(aiko.id))
    assert mine.available
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await kit.stub.SetUserName(pb.SetUserNameRequest(user_name="aiko.SATO"), metadata=kit.as_agent(ben.id))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION and NOT_AVAILABLE in refused.value.details()

    for bad in ("short", "x" * 31, "aiko sato", "aiko-sato", "aiko|sato", "名前名前名前", ""):
        check = await kit.stub.CheckUserName(pb.CheckUserNameRequest(user_name=bad), metadata=kit.as_agent(ben.id))
        assert (check.available, check.message) == (False, NOT_AVAILABLE), bad
        assert "6 to 30 letters" in check.reason
        code = await status_of(kit.stub.SetUserName(pb.SetUserNameRequest(user_name=bad), metadata=kit.as_agent(ben.id)))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
    # An agent sets only their own; an admin anyone's.
    code = await status_of(
        kit.stub.SetUserName(pb.SetUserNameRequest(user_name="ben_1234", agent_id=aiko.id), metadata=kit.as_agent(ben.id))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    by_admin = await kit.stub.SetUserName(pb.SetUserNameRequest(user_name="ben_1234", agent_id=ben.id), metadata=kit.admin())
    assert by_admin.user_name == "ben_1234"


async def test_cmd02_password_and_login_check(kit):
    aiko = await kit.agent("aiko@example.com", [], name="Aiko")
    await kit.stub.SetUserName(pb.SetUserNameRequest(user_name="aiko.sato"), metadata=kit.as_agent(aiko.id))
    bridge = auth(kit.tenant, "service", "xmpp")
    code = await status_of(
        kit.stub.VerifyAgentLogin(pb.VerifyAgentLoginRequest(user_name="aiko.sato", password="anything1"), metadata=bridge)
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED, "no password set yet"
    short = kit.stub.SetAgentPassword(pb.SetAgentPasswordRequest(password="short"), metadata=kit.as_agent(aiko.id))
    assert await status_of(short) == grpc.StatusCode.INVALID_ARGUMENT
    login = await kit.stub.SetAgentPassword(pb.SetAgentPasswordRequest(password="s3cret-pass"), metadata=kit.as_agent(aiko.id))
    assert login.has_password

    ok = await kit.stub.VerifyAgentLogin(
        pb.VerifyAgentLoginRequest(user_name="Aiko.Sato", password="s3cret-pass"), metadata=bridge
    )
    assert (ok.agent_id, ok.name, ok.user_name) == (aiko.id, "Aiko", "aiko.sato")
    for user, password in (("aiko.sato", "wrong-pass"), ("nobody.here", "s3cret-pass"), ("aiko.sato", "")):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await kit.stub.VerifyAgentLogin(pb.VerifyAgentLoginRequest(user_name=user, password=password), metadata=bridge)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert refused.value.details() == "wrong user name or password"
    other_portal = auth(kit.tenant + "-other", "service", "xmpp")
    code = await status_of(
        kit.stub.VerifyAgentLogin(
            pb.VerifyAgentLoginRequest(user_name="aiko.sato", password="s3cret-pass"), metadata=other_portal
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    as_agent = kit.stub.VerifyAgentLogin(
        pb.VerifyAgentLoginRequest(user_name="aiko.sato", password="s3cret-pass"), metadata=kit.as_agent(aiko.id)
    )
    assert await status_of(as_agent) == grpc.StatusCode.PERMISSION_DENIED, "only the bridge (a service) checks logins"
    seen = await kit.stub.GetAgentLogin(pb.GetAgentLoginRequest(), metadata=kit.as_agent(aiko.id))
    assert (seen.user_name, seen.has_password) == ("aiko.sato", True)
    by_name = await kit.stub.GetAgentLogin(pb.GetAgentLoginRequest(user_name="AIKO.sato"), metadata=bridge)
    assert by_name.agent_id == aiko.id
    code = await status_of(kit.stub.GetAgentLogin(pb.GetAgentLoginRequest(user_name="aiko.sato"), metadata=kit.as_agent(aiko.id)))
    assert code == grpc.StatusCode.PERMISSION_DENIED


async def test_cmd02_passwords_are_stored_as_scrypt_hashes(kit, db: asyncpg.Connection):
    aiko = await kit.agent("aiko@example.com", [], name="Aiko")
    await kit.stub.SetAgentPassword(pb.SetAgentPasswordRequest(password="s3cret-pass"), metadata=kit.as_agent(aiko.id))
    stored = await db.fetchval("SELECT password_hash FROM agent_logins WHERE tenant = $1 AND agent_id = $2", kit.tenant, aiko.id)
    assert stored.startswith("scrypt$16384$8$1$") and "s3cret" not in stored
    assert password_matches("s3cret-pass", stored) and not password_matches("s3cret-pasS", stored)


@given(st.text(max_size=40))
def test_cmd02_user_name_rule(name):
    valid = 6 <= len(name) <= 30 and all(c.isascii() and (c.isalnum() or c in "_.") for c in name)
    assert (user_name_problem(name) == "") == valid


def test_cmd02_login_forms_and_hashes():
    assert split_login("acme|aiko.sato") == ("acme", "aiko.sato")
    assert split_login("acme\\aiko.sato") == ("acme", "aiko.sato")
    assert split_login("aiko.sato") is None and split_login("|aiko") is None and split_login("acme|") is None
    assert not password_matches("x", "") and not password_matches("x", "md5$abc")
    assert hash_password("pw", b"0" * 16) == hash_password("pw", b"0" * 16) != hash_password("pw")
