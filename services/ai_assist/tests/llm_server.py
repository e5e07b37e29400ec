"""A local stand-in for an OpenAI-compatible LLM: real HTTP, the real chat-completions wire
format (POST <base>/chat/completions, bearer auth, OpenAI error bodies, Retry-After on 429).

Reusable outside these tests (stdlib only):

    from llm_server import FakeLlm, start_llm_server
    base_url = start_llm_server()            # daemon thread on a free port, e.g. http://127.0.0.1:PORT/v1
    os.environ["KAIWA_LLM_URL"] = base_url; os.environ["KAIWA_LLM_MODEL"] = "fake-model"

    llm = FakeLlm(api_key="sk-test"); url = llm.start()
    llm.fail_next(503, 429)                  # answer these statuses first, then succeed
    llm.requests[-1]["body"]["messages"]     # what the client sent
    llm.stop()

Default reply: "Rewritten: <the draft>", the draft being what the last user message holds
between its fence lines (`<<<...BEGIN` / `<<<...END`), or the whole message when it has
none. Pass `reply=callable(body) -> str` for others; `draft_of(body)` gives the draft.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

Reply = Callable[[dict], str]


def draft_of(body: dict) -> str:
    """The draft a request asks to rewrite (between the fence lines of the last user message)."""
    users = [m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"]
    content = users[-1] if users else ""
    lines = content.split("\n")
    begin = [i for i, line in enumerate(lines) if line.startswith("<<<") and line.endswith("BEGIN")]
    end = [i for i, line in enumerate(lines) if line.startswith("<<<") and line.endswith("-END") and "CONTEXT" not in line]
    if begin and end and end[-1] > begin[-1]:
        return "\n".join(lines[begin[-1] + 1 : end[-1]])
    return content


def default_reply(body: dict) -> str:
    return f"Rewritten: {draft_of(body)}"


class FakeLlm:
    def __init__(self, reply: Reply = default_reply, api_key: str | None = None, delay: float = 0.0):
        self.reply = reply
        self.api_key = api_key
        self.delay = delay  # seconds before answering (to provoke timeouts)
        self.requests: list[dict] = []  # {"path", "headers", "body"} of each request
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    def start(self) -> str:
        """Serve on a free port in a daemon thread; returns the base URL (ends in /v1)."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-llm", daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these HTTP statuses (429, 500, 503, 401, ...)."""
        with self._lock:
            self._failures.extend(statuses)

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()
            self.requests.clear()
        self.delay = 0.0
        self.reply = default_reply

    def _next_failure(self) -> int | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if fake.delay:
                    time.sleep(fake.delay)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    return self._error(404, f"Unknown request URL: POST {self.path}", "invalid_request_error")
                if fake.api_key and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    return self._error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
                failure = fake._next_failure()
                if failure == 429:
                    return self._error(
                        429, "Rate limit reached for requests", "requests", "rate_limit_exceeded", {"Retry-After": "0"}
                    )
                if failure is not None:
                    return self._error(
                        failure,
                        "The server had an error while processing your request.",
                        "server_error" if failure >= 500 else "invalid_request_error",
                    )
                problem = _invalid(body)
                if problem:
                    return self._error(400, problem, "invalid_request_error")
                content = fake.reply(body)
                prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
                completion_tokens = len(content.split())
                self._json(
                    200,
                    {
                        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": content, "refusal": None},
                                "logprobs": None,
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {
                            "prompt_tokens": prompt_tokens,
                            "completion_tokens": completion_tokens,
                            "total_tokens": prompt_tokens + completion_tokens,
                        },
                        "system_fingerprint": "fp_fake",
                    },
                )

            def _error(self, status: int, message: str, kind: str, code: str | None = None, headers: dict | None = None):
                self._json(status, {"error": {"message": message, "type": kind, "param": None, "code": code}}, headers)

            def _json(self, status: int, payload: dict, headers: dict | None = None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _invalid(body) -> str | None:
    if not isinstance(body, dict):
        return "We could not parse the JSON body of your request."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    for i, m in enumerate(messages):
        if (
            not isinstance(m, dict)
            or m.get("role") not in ("system", "developer", "user", "assistant", "tool")
            or not isinstance(m.get("content"), str)
        ):
            return f"Invalid value for 'messages[{i}]'"
    return None


def start_llm_server(reply: Reply = default_reply, api_key: str | None = None) -> str:
    """Start a fake LLM for the rest of the process (daemon thread); returns its base URL."""
    return FakeLlm(reply=reply, api_key=api_key).start()
