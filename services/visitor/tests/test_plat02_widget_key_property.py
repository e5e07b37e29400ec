"""PLAT-02, property tests of the widget-key parser (pure: no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaiwa_common.errors import Unauthenticated
from kaiwa_visitor.domain import new_widget_key, tenant_of_key, visitor_id_for

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
    tampered = key[:position] + char + key[position + 1:]
    try:
        found = tenant_of_key(tampered)
    except Unauthenticated:
        return
    # A changed tenant part may name another tenant; the lookup then needs that tenant's
    # key with the same random part, which does not exist.
    assert isinstance(found, str) and found


@given(st.text(max_size=80))
def test_plat02_visitor_id_is_always_a_uuid(stored):
    import uuid

    assert uuid.UUID(visitor_id_for(stored)).int != 0
    if stored.strip() and stored == visitor_id_for(stored):
        assert uuid.UUID(stored)


@pytest.mark.parametrize("key", ["", "wk", "wk..", "wk.dA.short", "xx.dA." + "a" * 32, "wk.dA." + "a" * 32 + ".x"])
def test_plat02_malformed_widget_keys(key):
    with pytest.raises(Unauthenticated):
        tenant_of_key(key)
