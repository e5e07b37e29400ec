"""PLAT-02 (bad input), property tests of the one e-mail rule every service uses (pure: no I/O)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kaiwa_common.errors import InvalidArgument
from kaiwa_common.emails import normalize_email, valid_email


@given(st.emails())
def test_plat02_real_addresses_are_accepted_as_written_and_keyed_lower_case(email):
    if len(email) <= 254 and len(email.split("@")[0]) <= 64:
        assert valid_email(f"  {email} ") == email
        assert normalize_email(f"  {email} ") == email.lower()


@given(st.text(max_size=300))
def test_plat02_anything_else_is_an_address_or_invalid_argument(text):
    try:
        email = valid_email(text)
    except InvalidArgument as exc:
        assert exc.message
        return
    local, _, domain = email.partition("@")
    assert local and "." in domain and " " not in email and email == email.strip()
