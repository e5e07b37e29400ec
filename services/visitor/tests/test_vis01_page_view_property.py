"""VIS-01, property tests of the page-view validation (pure: no I/O): any input is either
accepted as clean values or refused with InvalidArgument, never another error."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from hypothesis import given
from hypothesis import strategies as st

from kaiwa_common.errors import InvalidArgument
from kaiwa_visitor.domain import validate_page_view

urlish = st.one_of(
    st.text(max_size=80),
    st.from_regex(r"\Ahttps?://[^\s]{0,40}\Z"),
    st.from_regex(r"\A[a-z-]{1,12}://\[?[0-9a-f:.]{0,20}\]?(:[0-9]{0,6})?/?\Z"),
)


@given(url=urlish, referrer=urlish, title=st.text(max_size=40), ip=st.one_of(st.text(max_size=40), st.ip_addresses().map(str)))
def test_vis01_page_view_is_clean_or_invalid_argument(url, referrer, title, ip):
    try:
        view = validate_page_view(visitor_id="v", url=url, title=title, referrer=referrer, user_agent="ua", ip=ip)
    except InvalidArgument as exc:
        assert exc.message
        return
    assert urlsplit(view.url).scheme.lower() in ("http", "https") and urlsplit(view.url).hostname
    assert not view.referrer or urlsplit(view.referrer).hostname
    assert not view.ip or ipaddress.ip_address(view.ip)
    assert view.title == " ".join(view.title.split())
