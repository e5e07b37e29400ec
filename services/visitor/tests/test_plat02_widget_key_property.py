"""PLAT-02, property tests of the widget-key parser and the visitor-secret rules (pure: no I/O)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaiwa_common.errors import Unauthenticated
from kaiwa_visitor.domain import (
    StoredSecret,
    Verdict,
    check_secret_format,
    hash_secret,
    judge_secret,
    new_visitor_secret,
    new_widget_key,
    tenant_of_key,
)

tenants = st.text(min_size=1, max_size=60).filter(lambda t: "\x00" not in t)


@given(tenants)
def test_plat02_widget_key_names_its_tenant(tenant):
    assert tenant_of_key(new_widget_key(tenant)) == tenant


@given(st.text(max_size=300))
def test_plat02_any_other_string_is_refused_as_unauthenticated_or_names_a_tenant(text):
    try:
        tenant = tenant_of_key(text)
    except Unauthenticated:
        return
    assert tenant  # a well-formed key: the lookup is then scoped to that tenant


@given(tenants, st.integers(min_value=0, max_value=200), st.characters())
def test_plat02_a_tampered_key_is_refused_or_parsed_never_a_crash(tenant, position, char):
    key = new_widget_key(tenant)
    position %= len(key)
    tampered = key[:position] + char + key[position + 1 :]
    try:
        found = tenant_of_key(tampered)
    except Unauthenticated:
        return
    # A changed tenant part may name another tenant; the lookup then needs that tenant's
    # key with the same random part, which does not exist.
    assert isinstance(found, str) and found


def test_plat02_visitor_secrets_are_long_random_and_well_formed():
    issued = {new_visitor_secret() for _ in range(1000)}
    assert len(issued) == 1000
    for secret in issued:
        assert check_secret_format(secret) == secret and len(secret) == 46
        assert len(hash_secret(secret)) == 32 and hash_secret(secret) == hash_secret(secret)


@given(st.text(max_size=200))
def test_plat02_any_other_string_is_refused_as_not_a_secret_never_a_crash(text):
    try:
        check_secret_format(text)
    except Unauthenticated as exc:
        assert "without it to start a new visitor" in exc.message
        return
    assert text.startswith("vs.") and text.isascii() and 46 <= len(text) <= 128


NOW = datetime(2025, 4, 1, tzinfo=timezone.utc)
IDLE = timedelta(days=180)


def stored(age: timedelta, used=False, session_revoked=False, key_revoked=False) -> StoredSecret:
    return StoredSecret(
        secret_hash=b"h" * 32,
        session_id="s",
        visitor_id="v",
        created_at=NOW - age,
        used_at=NOW if used else None,
        session_revoked_at=NOW if session_revoked else None,
        key_revoked_at=NOW if key_revoked else None,
        checked_at=NOW,
    )


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)), st.booleans(), st.booleans(), st.booleans())
def test_plat02_secret_verdicts_follow_the_table(age, used, session_revoked, key_revoked):
    verdict = judge_secret(stored(age, used, session_revoked, key_revoked), IDLE)
    if session_revoked:
        assert verdict is Verdict.REVOKED
    elif used:
        assert verdict is Verdict.REUSED  # a copy exists, however old
    elif key_revoked:
        assert verdict is Verdict.KEY_REVOKED
    elif age > IDLE:
        assert verdict is Verdict.EXPIRED
    else:
        assert verdict is Verdict.VALID
    assert judge_secret(None, IDLE) is Verdict.UNKNOWN


@pytest.mark.parametrize("key", ["", "wk", "wk..", "wk.dA.short", "xx.dA." + "a" * 32, "wk.dA." + "a" * 32 + ".x"])
def test_plat02_malformed_widget_keys(key):
    with pytest.raises(Unauthenticated):
        tenant_of_key(key)
