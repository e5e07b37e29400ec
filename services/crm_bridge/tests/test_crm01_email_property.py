"""CRM-01, property tests of e-mail normalisation (pure: no I/O)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kaiwa_common.errors import InvalidArgument
from kaiwa_crm.domain import normalize_email


@given(st.emails())
def test_crm01_real_addresses_are_accepted_as_written(email):
    if len(email) <= 254 and len(email.split("@")[0]) <= 64:
        assert normalize_email(f"  {email} ") == email


@given(st.text(max_size=300))
def test_crm01_anything_else_is_an_address_or_invalid_argument(text):
    try:
        email = normalize_email(text)
    except InvalidArgument as exc:
        assert exc.message
        return
    local, _, domain = email.partition("@")
    assert local and "." in domain and " " not in email and email == email.strip()
