"""A local stand-in for a Zoho CRM account: real HTTP on 127.0.0.1 with the wire format of
Zoho CRM's REST API v8 and its accounts server (stdlib only, a daemon thread).

- OAuth: POST /oauth/v2/token?grant_type=refresh_token&refresh_token=&client_id=&client_secret=
  -> 200 {"access_token", "api_domain", "token_type": "Bearer", "expires_in": 3600}; an
  unknown refresh token or client -> 200 {"error": "invalid_code"} / {"error": "invalid_client"}
  (Zoho answers these with 200). API calls need "Authorization: Zoho-oauthtoken <token>":
  none -> 401 AUTHENTICATION_FAILURE, unknown or expired -> 401 INVALID_TOKEN.
- Records under /crm/v8/{module}: POST (create, `data` envelope, per-record code/status/
  details; 201 all created, 207 mixed, 400 none), GET /{id} (200 `data`; an unknown id ->
  400 INVALID_DATA), PUT /{id}, POST /upsert (duplicate_check_fields, action insert/update),
  GET /search?email= or ?criteria=(Field:equals:value) (200 with `info`, 204 when nothing
  matches), related lists GET /{module}/{id}/{Notes|Attachments|Tasks|Calls|Deals},
  POST /{module}/{id}/Notes, POST /{module}/{id}/Attachments (multipart "file"),
  POST /Leads/{id}/actions/convert (contact, account, optional deal; the lead is gone),
  GET /users?type=AdminUsers|ActiveUsers|CurrentUser.
- Mandatory fields: Last_Name (Leads, Contacts; Company too for Leads), Deal_Name and
  Stage (Deals), Subject (Tasks, Calls) -> MANDATORY_NOT_FOUND; an Email that is not an
  address -> INVALID_DATA; an Owner id that is no user -> INVALID_DATA.
- Faults on demand: `throttle(n, retry_after)` answers the next n calls 429
  TOO_MANY_REQUESTS with Retry-After and X-RATELIMIT-LIMIT/-REMAINING/-RESET headers;
  `fail_next(500, ...)` answers the next calls with these statuses; `stop()` and
  `start()` again on the same port (an outage); `expire_tokens()` revokes access tokens.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MANDATORY = {
    "Leads": ("Last_Name", "Company"),
    "Contacts": ("Last_Name",),
    "Deals": ("Deal_Name", "Stage"),
    "Tasks": ("Subject",),
    "Calls": ("Subject", "Call_Type", "Call_Start_Time"),
}
MODULES = ("Leads", "Contacts", "Accounts", "Deals", "Tasks", "Calls", "Visits")
# Field lengths, as Zoho's standard layouts have them (INVALID_DATA with maximum_length).
MAX_LENGTH = {"Last_Name": 80, "First_Name": 40, "Company": 200, "Deal_Name": 120, "Subject": 255}


class ZohoStandIn:
    def __init__(
        self,
        refresh_token: str = "1000.refresh-token-of-the-admin",
        client_id: str = "1000.CLIENTID",
        client_secret: str = "client-secret-0123456789",
    ):
        self.refresh_tokens = {refresh_token}
        self.client = (client_id, client_secret)
        self.users = [
            {
                "id": "5725767000000411001",
                "email": "boss@zylker.example",
                "full_name": "Patricia Boyle",
                "status": "active",
                "profile": {"name": "Administrator", "id": "5725767000000026011"},
                "role": {"name": "CEO", "id": "5725767000000026005"},
            },
            {
                "id": "5725767000000411002",
                "email": "sales@zylker.example",
                "full_name": "Sam Sales",
                "status": "active",
                "profile": {"name": "Standard", "id": "5725767000000026014"},
                "role": {"name": "Manager", "id": "5725767000000026006"},
            },
        ]
        self.modules: dict[str, dict[str, dict]] = {m: {} for m in MODULES}
        self.notes: dict[str, dict] = {}
        self.attachments: dict[str, dict] = {}
        self.requests: list[dict] = []
        self._tokens: dict[str, float] = {}
        self._ids = itertools.count(5725767000001000001)
        self._throttle: list[float] = []
        self._failures: list[int] = []
        self._lose: list[tuple[str, str]] = []
        self.max_length = dict(MAX_LENGTH)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.url = ""

    # --- control -------------------------------------------------------------------------

    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"standin": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def throttle(self, calls: int, retry_after: float) -> None:
        with self._lock:
            self._throttle = [retry_after] * calls

    def fail_next(self, *statuses: int) -> None:
        with self._lock:
            self._failures.extend(statuses)

    def lose_next_answer(self, method: str, path_part: str) -> None:
        """Carry out the next such request, then drop the connection without answering
        (the client cannot know it was done)."""
        with self._lock:
            self._lose.append((method, path_part))

    def answer_lost(self, method: str, path: str) -> bool:
        with self._lock:
            for lost in self._lose:
                if lost[0] == method and lost[1] in path:
                    self._lose.remove(lost)
                    return True
        return False

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def calls(self, method: str = "", path_part: str = "") -> list[dict]:
        return [r for r in self.requests if (not method or r["method"] == method) and path_part in r["path"]]

    def find(self, module: str, **equals) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self.modules[module].values() if all(r.get(k) == v for k, v in equals.items())]

    def add(self, module: str, record: dict) -> dict:
        with self._lock:
            return dict(self._insert(module, record))

    # --- the API -------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict, headers, body: bytes) -> tuple[int, dict | None, dict]:
        with self._lock:
            self.requests.append({"method": method, "path": path, "query": query, "body": body[:2000]})
            if path == "/oauth/v2/token":
                return self._oauth(query)
            if not path.startswith("/crm/v8/"):
                return (
                    404,
                    {
                        "code": "INVALID_URL_PATTERN",
                        "details": {},
                        "message": "Please check if the URL trying to access is a correct one",
                        "status": "error",
                    },
                    {},
                )
            if self._throttle:
                wait = self._throttle.pop(0)
                reset = int((time.time() + wait) * 1000)
                headers_out = {
                    "Retry-After": str(int(wait)),
                    "X-RATELIMIT-LIMIT": "100",
                    "X-RATELIMIT-REMAINING": "0",
                    "X-RATELIMIT-RESET": str(reset),
                }
                return (
                    429,
                    {
                        "code": "TOO_MANY_REQUESTS",
                        "message": "Rate limit exceeded. Please retry after the specified time.",
                        "status": "error",
                        "details": {"retry_after": wait},
                    },
                    headers_out,
                )
            if self._failures:
                status = self._failures.pop(0)
                return (
                    status,
                    {"code": "INTERNAL_ERROR", "details": {}, "message": "Internal Server Error", "status": "error"},
                    {},
                )
            auth = headers.get("Authorization", "")
            if not auth.startswith("Zoho-oauthtoken "):
                return (
                    401,
                    {"code": "AUTHENTICATION_FAILURE", "details": {}, "message": "Authentication failed", "status": "error"},
                    {},
                )
            if self._tokens.get(auth.split(" ", 1)[1], 0) < time.time():
                return 401, {"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"}, {}
            return self._api(method, path.removeprefix("/crm/v8/").strip("/").split("/"), query, headers, body)

    def _oauth(self, q: dict) -> tuple[int, dict, dict]:
        if q.get("grant_type") != "refresh_token":
            return 200, {"error": "unsupported_grant_type"}, {}
        if (q.get("client_id"), q.get("client_secret")) != self.client:
            return 200, {"error": "invalid_client"}, {}
        if q.get("refresh_token") not in self.refresh_tokens:
            return 200, {"error": "invalid_code"}, {}
        token = f"1000.{uuid.uuid4().hex}.{uuid.uuid4().hex[:16]}"
        self._tokens[token] = time.time() + 3600
        return 200, {"access_token": token, "api_domain": self.url, "token_type": "Bearer", "expires_in": 3600}, {}

    def _api(self, method: str, parts: list[str], q: dict, headers, body: bytes) -> tuple[int, dict | None, dict]:
        if parts == ["users"]:
            return self._users(q.get("type", "AllUsers"))
        module = parts[0]
        if module not in self.modules:
            return (
                400,
                {
                    "code": "INVALID_MODULE",
                    "details": {"resource_path_index": 0},
                    "message": "the module name given seems to be invalid",
                    "status": "error",
                },
                {},
            )
        if len(parts) == 1 and method == "POST":
            return self._create(module, _json(body).get("data") or [])
        if parts[1:] == ["search"] and method == "GET":
            return self._search(module, q)
        if parts[1:] == ["upsert"] and method == "POST":
            data = _json(body)
            return self._upsert(module, data.get("data") or [], data.get("duplicate_check_fields") or ["Email"])
        record = self.modules[module].get(parts[1])
        if record is None:
            return (
                400,
                {
                    "code": "INVALID_DATA",
                    "details": {"resource_path_index": 1},
                    "message": "the related id given seems to be invalid",
                    "status": "error",
                },
                {},
            )
        if len(parts) == 2 and method == "GET":
            return 200, {"data": [dict(record)]}, {}
        if len(parts) == 2 and method == "PUT":
            return self._update(module, record, (_json(body).get("data") or [{}])[0])
        if parts[2:] == ["actions", "convert"] and module == "Leads" and method == "POST":
            return self._convert(record, (_json(body).get("data") or [{}])[0])
        if len(parts) == 3:
            return self._related(module, record, parts[2], method, headers, body)
        return (
            404,
            {
                "code": "INVALID_URL_PATTERN",
                "details": {},
                "message": "Please check if the URL trying to access is a correct one",
                "status": "error",
            },
            {},
        )

    def _users(self, kind: str) -> tuple[int, dict, dict]:
        users = self.users
        if kind == "AdminUsers":
            users = [u for u in users if u["profile"]["name"] == "Administrator"]
        elif kind == "CurrentUser":
            users = users[:1]
        return 200, {"users": users, "info": {"per_page": 200, "count": len(users), "page": 1, "more_records": False}}, {}

    def _search(self, module: str, q: dict) -> tuple[int, dict | None, dict]:
        rows = list(self.modules[module].values())
        if "email" in q:
            email = q["email"].lower()
            rows = [r for r in rows if email in (str(r.get("Email") or "").lower(), str(r.get("Secondary_Email") or "").lower())]
        elif "criteria" in q:
            match = re.fullmatch(r"\((\w+):equals:(.*)\)", q["criteria"])
            if not match:
                return (
                    400,
                    {
                        "code": "INVALID_QUERY",
                        "details": {"reason": "invalid criteria"},
                        "message": "invalid query formed",
                        "status": "error",
                    },
                    {},
                )
            field, value = match.groups()
            rows = [r for r in rows if str(r.get(field)) == value]
        else:
            return (
                400,
                {
                    "code": "REQUIRED_PARAM_MISSING",
                    "details": {"param": "criteria"},
                    "message": "One of the expected parameter is missing",
                    "status": "error",
                },
                {},
            )
        if not rows:
            return 204, None, {}
        return (
            200,
            {"data": [dict(r) for r in rows], "info": {"per_page": 200, "count": len(rows), "page": 1, "more_records": False}},
            {},
        )

    def _create(self, module: str, data: list[dict]) -> tuple[int, dict, dict]:
        results = []
        for index, item in enumerate(data):
            problem = self._invalid(module, item, index)
            if problem:
                results.append(problem)
                continue
            record = self._insert(module, item)
            results.append(_success(record, "record added"))
        return _status(results, created=True), {"data": results}, {}

    def _upsert(self, module: str, data: list[dict], keys: list[str]) -> tuple[int, dict, dict]:
        results = []
        for index, item in enumerate(data):
            same = next(
                (r for r in self.modules[module].values() if any(item.get(k) and r.get(k) == item.get(k) for k in keys)), None
            )
            if same is not None:
                same.update(item)
                same["Modified_Time"] = _now()
                results.append({**_success(same, "record updated"), "duplicate_field": keys[0], "action": "update"})
                continue
            problem = self._invalid(module, item, index)
            if problem:
                results.append(problem)
                continue
            record = self._insert(module, item)
            results.append({**_success(record, "record added"), "duplicate_field": None, "action": "insert"})
        return _status(results, created=False), {"data": results}, {}

    def _update(self, module: str, record: dict, item: dict) -> tuple[int, dict, dict]:
        if "Email" in item and item["Email"] and not _EMAIL.match(str(item["Email"])):
            return (
                400,
                {"data": [_error("INVALID_DATA", "invalid data", {"api_name": "Email", "json_path": "$.data[0].Email"})]},
                {},
            )
        for key, value in item.items():
            if value is None:
                record.pop(key, None)
            else:
                record[key] = value
        record["Modified_Time"] = _now()
        return 200, {"data": [_success(record, "record updated")]}, {}

    def _related(
        self, module: str, record: dict, related: str, method: str, headers, body: bytes
    ) -> tuple[int, dict | None, dict]:
        rid = record["id"]
        if related == "Notes" and method == "POST":
            results = []
            for item in _json(body).get("data") or []:
                note = {
                    "id": str(next(self._ids)),
                    "Note_Title": item.get("Note_Title"),
                    "Note_Content": item.get("Note_Content"),
                    "Parent_Id": {"module": {"api_name": module}, "id": rid},
                    "Created_Time": _now(),
                }
                self.notes[note["id"]] = note
                results.append(_success(note, "record added"))
            return 201, {"data": results}, {}
        if related == "Attachments" and method == "POST":
            name, content = _multipart_file(headers, body)
            if name is None:
                return (
                    400,
                    {
                        "code": "REQUIRED_PARAM_MISSING",
                        "details": {"param": "file"},
                        "message": "One of the expected parameter is missing",
                        "status": "error",
                    },
                    {},
                )
            attachment = {
                "id": str(next(self._ids)),
                "File_Name": name,
                "Size": str(len(content)),
                "Parent_Id": {"id": rid},
                "content": content,
                "Created_Time": _now(),
            }
            self.attachments[attachment["id"]] = attachment
            return 200, {"data": [_success(attachment, "attachment uploaded successfully")]}, {}
        if method != "GET":
            return (
                405,
                {
                    "code": "INVALID_REQUEST_METHOD",
                    "details": {},
                    "message": "The http request method type is not a valid one",
                    "status": "error",
                },
                {},
            )
        if related == "Notes":
            rows = [n for n in self.notes.values() if n["Parent_Id"]["id"] == rid]
        elif related == "Attachments":
            rows = [
                {k: v for k, v in a.items() if k != "content"} for a in self.attachments.values() if a["Parent_Id"]["id"] == rid
            ]
        elif related in ("Tasks", "Calls"):
            rows = [r for r in self.modules[related].values() if rid in (_ref(r.get("What_Id")), _ref(r.get("Who_Id")))]
        elif related == "Deals":
            rows = [r for r in self.modules["Deals"].values() if _ref(r.get("Contact_Name")) == rid]
        else:
            return (
                400,
                {
                    "code": "INVALID_DATA",
                    "details": {"resource_path_index": 2},
                    "message": "the related list given seems to be invalid",
                    "status": "error",
                },
                {},
            )
        if not rows:
            return 204, None, {}
        return (
            200,
            {"data": [dict(r) for r in rows], "info": {"per_page": 200, "count": len(rows), "page": 1, "more_records": False}},
            {},
        )

    def _convert(self, lead: dict, item: dict) -> tuple[int, dict, dict]:
        account = None
        if lead.get("Company"):
            account = next((a for a in self.modules["Accounts"].values() if a["Account_Name"] == lead["Company"]), None)
            account = account or self._insert("Accounts", {"Account_Name": lead["Company"], "Owner": lead.get("Owner")})
        contact = self._insert(
            "Contacts",
            {
                k: lead.get(k)
                for k in ("Email", "First_Name", "Last_Name", "Phone", "Lead_Source", "Owner", "Tag")
                if lead.get(k) is not None
            }
            | ({"Account_Name": {"name": account["Account_Name"], "id": account["id"]}} if account else {}),
        )
        deal = None
        if item.get("Deals"):
            d = item["Deals"]
            problem = self._invalid("Deals", d, 0)
            if problem:
                return 400, {"data": [problem]}, {}
            deal = self._insert("Deals", {**d, "Contact_Name": {"name": contact["Last_Name"], "id": contact["id"]}})
        del self.modules["Leads"][lead["id"]]
        for row in self.notes.values():
            if row["Parent_Id"]["id"] == lead["id"]:
                row["Parent_Id"] = {"module": {"api_name": "Contacts"}, "id": contact["id"]}
        details = {
            "Contacts": {"name": contact["Last_Name"], "id": contact["id"]},
            "Deals": {"name": deal["Deal_Name"], "id": deal["id"]} if deal else None,
            "Accounts": {"name": account["Account_Name"], "id": account["id"]} if account else None,
        }
        return (
            200,
            {"data": [{"code": "SUCCESS", "details": details, "message": "Successfully converted", "status": "success"}]},
            {},
        )

    # --- helpers --------------------------------------------------------------------------

    def _invalid(self, module: str, item: dict, index: int) -> dict | None:
        for field in MANDATORY.get(module, ()):
            if not item.get(field):
                return _error(
                    "MANDATORY_NOT_FOUND",
                    "required field not found",
                    {"api_name": field, "json_path": f"$.data[{index}].{field}"},
                )
        if item.get("Email") and not _EMAIL.match(str(item["Email"])):
            return _error("INVALID_DATA", "invalid data", {"api_name": "Email", "json_path": f"$.data[{index}].Email"})
        for field, limit in self.max_length.items():
            if len(str(item.get(field) or "")) > limit:
                details = {"maximum_length": limit, "api_name": field, "json_path": f"$.data[{index}].{field}"}
                return _error("INVALID_DATA", f"invalid data: {field} is longer than {limit}", details)
        owner = item.get("Owner")
        if owner and not any(u["id"] == _ref(owner) for u in self.users):
            return _error("INVALID_DATA", "invalid data", {"api_name": "Owner", "json_path": f"$.data[{index}].Owner"})
        return None

    def _insert(self, module: str, item: dict) -> dict:
        record = {k: v for k, v in item.items() if v is not None}
        record["id"] = str(next(self._ids))
        admin = self.users[0]
        owner = next((u for u in self.users if u["id"] == _ref(item.get("Owner"))), admin)
        record["Owner"] = {"name": owner["full_name"], "id": owner["id"], "email": owner["email"]}
        record["Created_Time"] = record["Modified_Time"] = _now()
        record["Created_By"] = {"name": admin["full_name"], "id": admin["id"]}
        if module in ("Leads", "Contacts"):
            record["Full_Name"] = " ".join(p for p in (record.get("First_Name"), record.get("Last_Name")) if p)
        record.setdefault("Tag", [])
        self.modules[module][record["id"]] = record
        return record


class _Handler(BaseHTTPRequestHandler):
    standin: ZohoStandIn

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload, extra = self.standin.handle(self.command, parts.path, query, self.headers, body)
        if self.standin.answer_lost(self.command, parts.path):
            self.close_connection = True
            self.connection.shutdown(2)
            return
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for key, value in extra.items():
            self.send_header(key, value)
        if payload is not None:
            self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, *args) -> None:
        pass


def _success(record: dict, message: str) -> dict:
    details = {
        "Modified_Time": record.get("Modified_Time") or _now(),
        "Created_Time": record.get("Created_Time") or _now(),
        "id": record["id"],
    }
    if "Owner" in record:
        details["Modified_By"] = details["Created_By"] = {k: record["Owner"][k] for k in ("name", "id")}
    return {"code": "SUCCESS", "details": details, "message": message, "status": "success"}


def _error(code: str, message: str, details: dict) -> dict:
    return {"code": code, "details": details, "message": message, "status": "error"}


def _status(results: list[dict], created: bool) -> int:
    ok = sum(r["status"] == "success" for r in results)
    if ok == len(results):
        return 201 if created else 200
    return 207 if ok else 400


def _ref(value) -> str:
    return str(value.get("id", "")) if isinstance(value, dict) else ""


def _json(body: bytes) -> dict:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _multipart_file(headers, body: bytes) -> tuple[str | None, bytes]:
    """The part named "file" of a multipart/form-data body: (file name, content)."""
    head = f"Content-Type: {headers.get('Content-Type', '')}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return None, b""
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            return part.get_filename(), part.get_payload(decode=True) or b""
    return None, b""


def _now() -> str:
    return datetime.now(timezone(timedelta(hours=9))).isoformat(timespec="seconds")
