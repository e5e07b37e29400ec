"""CMD-02: the loopback HTTP endpoint prosody's mod_auth_kaiwa.lua asks whether an XMPP
login is right: POST /auth with JSON {"username": "<portal>|<user name>", "password": ...}
and `Authorization: Bearer <the shared secret>`; 200 yes, 401 no, 503 cannot tell now.
Only one request per connection, small bodies: it is prosody's, not the public's."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Awaitable, Callable

log = logging.getLogger("kaiwa.xmpp.auth")

MAX_BODY = 8192
Check = Callable[[str, str], Awaitable[bool | None]]  # True yes, False no, None cannot tell


async def serve(host: str, port: int, secret: str, check: Check) -> asyncio.base_events.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status = await _answer(reader, secret, check)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, UnicodeDecodeError):
            status = 400
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 503: "Service Unavailable"}[status]
        writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        try:
            await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)


async def _answer(reader: asyncio.StreamReader, secret: str, check: Check) -> int:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if method != "POST" or path != "/auth":
        return 400
    if not hmac.compare_digest(headers.get("authorization", ""), f"Bearer {secret}"):
        return 403
    length = int(headers.get("content-length", "0"))
    if not 0 < length <= MAX_BODY:
        return 400
    body = json.loads(await asyncio.wait_for(reader.readexactly(length), 5))
    verdict = await check(str(body.get("username", "")), str(body.get("password", "")))
    return 503 if verdict is None else 200 if verdict else 401
