"""HTTP to Zoho CRM: the OAuth refresh-token flow, retries with backoff, rate limits.

- Access tokens come from the accounts server (POST /oauth/v2/token, grant_type
  refresh_token) and are kept, encrypted, in the tenant's connection row for every
  replica; a 401 INVALID_TOKEN refreshes once and repeats the call.
- A 429 with a short wait, a connection that could not be made, and (for reads, updates
  and upserts, which are idempotent) 5xx answers and lost answers are retried within
  the call (tenacity, exponential backoff, `zoho_attempts` tries); then CrmUnavailable,
  and the write waits in the queue. A create (POST) whose answer is lost is not sent
  again here: the write's retry first looks for what it may have made (the adapter's
  markers), so nothing is created twice. A 429 asking for a longer wait (Retry-After,
  X-RATELIMIT-RESET) is not waited for here: CrmUnavailable with the CRM's time, and
  the tenant's calls pause until then.
- Refused credentials (invalid refresh token, AUTHENTICATION_FAILURE): CrmAuthFailed.
  Any other 4xx, and per-record errors inside 200/201/202/207 answers: CrmRefused with
  Zoho's code and message.
- Where Zoho is: its accounts server and API domain for the account's data centre; the
  token's api_domain is used only when it is a Zoho API domain (no request ever goes
  to a host a caller named). KAIWA_CRM_ZOHO_ACCOUNTS_URL / _API_URL replace both (a
  local stand-in in tests).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from ...config import CrmConfig
from ...domain.errors import CrmAuthFailed, CrmRefused, CrmUnavailable

API = "/crm/v8"
_API_DOMAIN = re.compile(r"^https://(www\.)?zohoapis\.(com|eu|in|com\.au|jp|ca|sa|com\.cn)$")


@dataclass(frozen=True)
class Credentials:
    refresh_token: str
    client_id: str
    client_secret: str
    data_center: str


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict | None
    headers: httpx.Headers


class TokenStore:
    """Where access tokens are kept between calls (the connection row, encrypted)."""

    async def load(self) -> tuple[str, datetime | None, str]: ...

    async def save(self, token: str, expires: datetime, api_url: str) -> None: ...


class _Retry(Exception):
    def __init__(self, message: str, wait: float | None = None):
        super().__init__(message)
        self.wait = wait


class ZohoClient:
    def __init__(self, http: httpx.AsyncClient, config: CrmConfig, credentials: Credentials, tokens: TokenStore):
        self.http = http
        self.config = config
        self.credentials = credentials
        self.tokens = tokens
        self._token = ""
        self._expires: datetime | None = None
        self._api_url = ""

    # --- OAuth ---------------------------------------------------------------------

    @property
    def accounts_url(self) -> str:
        return self.config.zoho_accounts_url.rstrip("/") or f"https://accounts.zoho.{self.credentials.data_center}"

    async def verify(self) -> None:
        """A fresh access token for these credentials, or CrmAuthFailed/CrmUnavailable."""
        await self._refresh()

    async def _access(self, force: bool = False) -> str:
        now = datetime.now(timezone.utc)
        if not force and self._token and self._expires and self._expires > now + timedelta(seconds=60):
            return self._token
        if not force:
            token, expires, api_url = await self.tokens.load()
            if token and expires and expires > now + timedelta(seconds=60):
                self._token, self._expires, self._api_url = token, expires, api_url
                return token
        await self._refresh()
        return self._token

    async def _refresh(self) -> None:
        c = self.credentials
        params = {
            "refresh_token": c.refresh_token,
            "client_id": c.client_id,
            "client_secret": c.client_secret,
            "grant_type": "refresh_token",
        }
        try:
            response = await self.http.post(
                f"{self.accounts_url}/oauth/v2/token", params=params, timeout=self.config.zoho_timeout
            )
        except httpx.HTTPError as exc:
            raise CrmUnavailable(f"Zoho accounts server unreachable: {exc!r}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise CrmUnavailable(f"Zoho accounts server answered {response.status_code}")
        body = _json(response)
        if response.status_code != 200 or "access_token" not in body:
            raise CrmAuthFailed(f"Zoho refused the integration key: {body.get('error') or response.status_code}")
        self._token = body["access_token"]
        self._expires = datetime.now(timezone.utc) + timedelta(seconds=int(body.get("expires_in", 3600)))
        self._api_url = self._api_base(str(body.get("api_domain", "")))
        await self.tokens.save(self._token, self._expires, self._api_url)

    def _api_base(self, api_domain: str) -> str:
        if self.config.zoho_api_url:
            return self.config.zoho_api_url.rstrip("/")
        if _API_DOMAIN.match(api_domain.rstrip("/")):
            return api_domain.rstrip("/")
        return f"https://www.zohoapis.{self.credentials.data_center}"

    # --- calls -----------------------------------------------------------------------

    async def call(self, method: str, path: str, *, params=None, json=None, files=None, idempotent: bool | None = None) -> Answer:
        """One API call (path under /crm/v8), retried as the module docstring says."""
        idempotent = method != "POST" if idempotent is None else idempotent
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(max(1, self.config.zoho_attempts)),
                wait=_backoff,
                retry=retry_if_exception_type(_Retry),
                reraise=True,
            ):
                with attempt:
                    return await self._authorised(method, path, params, json, files, idempotent)
        except _Retry as exc:
            raise CrmUnavailable(f"Zoho CRM {method} {path}: {exc}") from None
        raise AssertionError("unreachable")

    async def _authorised(self, method, path, params, json, files, idempotent: bool) -> Answer:
        answer = await self._send(method, path, params, json, files, await self._access(), idempotent)
        if answer.status == 401 and _code(answer) == "INVALID_TOKEN":
            answer = await self._send(method, path, params, json, files, await self._access(force=True), idempotent)
        if answer.status == 401:
            raise CrmAuthFailed(f"Zoho CRM refused Kaiwa's access: {_code(answer) or 401} {_message(answer)}")
        if answer.status == 429:
            self._rate_limited(answer)
        if answer.status >= 500:
            if not idempotent:
                raise CrmUnavailable(f"Zoho CRM {method} {path} answered {answer.status} {_code(answer)}")
            raise _Retry(f"answered {answer.status} {_code(answer)}")
        if answer.status >= 400 and records_of(answer):
            written(answer)  # the refused records' own codes and messages
        if answer.status >= 400:
            raise CrmRefused(f"Zoho CRM refused {method} {path}: {_code(answer)} {_message(answer)}", _code(answer))
        return answer

    async def _send(self, method, path, params, json, files, token: str, idempotent: bool) -> Answer:
        url = f"{self._api_url or self._api_base('')}{API}{path}"
        headers = {"Authorization": f"Zoho-oauthtoken {token}"}
        try:
            response = await self.http.request(
                method, url, params=params, json=json, files=files, headers=headers, timeout=self.config.zoho_timeout
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing was sent
            raise _Retry(f"unreachable ({exc!r})") from None
        except httpx.HTTPError as exc:  # sent, answer lost: only a repeatable call is repeated here
            if not idempotent:
                raise CrmUnavailable(f"Zoho CRM {method} {path}: no answer ({exc!r})") from None
            raise _Retry(f"no answer ({exc!r})") from None
        body = None if response.status_code == 204 or not response.content else _json(response)
        return Answer(response.status_code, body, response.headers)

    def _rate_limited(self, answer: Answer) -> None:
        wait = _retry_after(answer)
        if wait <= self.config.zoho_max_inline_wait:
            raise _Retry("rate limited (429)", wait=wait)
        raise CrmUnavailable(
            f"Zoho CRM rate limit reached (429 {_code(answer)}): calls resume in {wait:.0f} s",
            retry_at=datetime.now(timezone.utc) + timedelta(seconds=wait),
        )


def records_of(answer: Answer) -> list[dict]:
    """The `data` of a read (204 No Content: none)."""
    return list((answer.body or {}).get("data") or [])


def written(answer: Answer) -> list[dict]:
    """The `details` of each record of a write; a record Zoho refused raises CrmRefused."""
    results = []
    for item in records_of(answer):
        if item.get("status") != "success":
            raise CrmRefused(
                f"Zoho CRM refused the record: {item.get('code')} {item.get('message')} {item.get('details')}",
                item.get("code", ""),
            )
        results.append(item.get("details") or {})
    return results


def _backoff(retry_state) -> float:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    if isinstance(exc, _Retry) and exc.wait is not None:
        return exc.wait
    return min(0.2 * 2 ** (retry_state.attempt_number - 1), 2.0)


def _retry_after(answer: Answer) -> float:
    """Seconds until Zoho accepts calls again: Retry-After, else X-RATELIMIT-RESET (an
    epoch time in ms or s, or seconds), else details.retry_after, else a minute."""
    headers = answer.headers
    for value in (headers.get("retry-after"), headers.get("x-ratelimit-reset")):
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if number > 1e11:
            return max(0.0, number / 1000 - time.time())
        if number > 1e9:
            return max(0.0, number - time.time())
        return max(0.0, number)
    details = (answer.body or {}).get("details") or {}
    try:
        return float(details.get("retry_after", 60))
    except (TypeError, ValueError):
        return 60.0


def _json(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _code(answer: Answer) -> str:
    return str((answer.body or {}).get("code", ""))


def _message(answer: Answer) -> str:
    return str((answer.body or {}).get("message", ""))
