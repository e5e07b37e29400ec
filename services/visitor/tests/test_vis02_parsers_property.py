"""VIS-02, property tests of the parsers (pure, no I/O besides opening the embedded GeoIP
database): any input gives an answer of the right shape, never an exception."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaiwa_common.errors import InvalidArgument
from kaiwa_common.addresses import client_address, peer_address
from kaiwa_visitor.domain.blocking import network_of
from kaiwa_visitor.domain.model import Campaign, Client
from kaiwa_visitor.domain.sources import campaign_of, language_of, screen_of, search_terms
from kaiwa_visitor.domain.useragent import parse_user_agent
from kaiwa_visitor.enrichment import Enricher

junk = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.from_regex(r"\AMozilla/5\.0 \([^)]{0,60}\)[ -~]{0,80}\Z"),
)
urlish = st.one_of(
    st.text(max_size=200),
    st.from_regex(r"\Ahttps?://[a-z0-9.\[\]:-]{0,30}/[ -~]{0,60}\Z"),
    st.builds(
        lambda h, q: f"https://{h}/search?{q}",
        st.sampled_from(["www.google.co.jp", "search.yahoo.co.jp", "bing.com", "x.y"]),
        st.text(max_size=60),
    ),
)


@given(junk)
def test_vis02_user_agent_parser_never_crashes(ua):
    client = parse_user_agent(ua)
    assert isinstance(client, Client) and client.user_agent == ua
    assert client.platform in ("", "desktop", "mobile", "tablet", "bot", "other")


@given(urlish)
def test_vis02_referrer_and_campaign_parsers_never_crash(url):
    engine, keywords = search_terms(url)
    assert isinstance(engine, str) and isinstance(keywords, str) and len(keywords) <= 200
    assert not keywords or engine
    campaign = campaign_of(url)
    assert isinstance(campaign, Campaign) and all(len(v) <= 200 for v in campaign.__dict__.values())


@given(st.text(max_size=100), st.integers(), st.integers())
def test_vis02_language_and_screen_never_crash(language, width, height):
    tag = language_of(language)
    assert tag == "" or tag.replace("-", "").isalnum()
    screen = screen_of(width, height)
    assert screen == "" or screen == f"{width}x{height}"


@pytest.fixture(scope="module")
def enricher():
    e = Enricher()
    yield e
    e.close()


@given(ip=st.one_of(st.ip_addresses().map(str), st.text(max_size=50)))
def test_vis02_geoip_lookup_never_crashes(enricher, ip):
    location = enricher.location(ip)
    assert location is None or (len(location.country_code) in (0, 2) and isinstance(location.city, str))


@given(
    peer=st.one_of(st.text(max_size=60), st.ip_addresses().map(lambda a: f"ipv{a.version}:{a}:1234")),
    forwarded=st.text(max_size=80),
)
def test_vis05_client_address_is_an_address_or_empty(peer, forwarded):
    proxies = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    for address in (peer_address(peer), client_address(peer, forwarded, proxies), client_address(peer, forwarded, ())):
        assert address == "" or ipaddress.ip_address(address)


@given(
    st.one_of(
        st.text(max_size=60),
        st.builds(lambda a, n: f"{a}/{n}", st.ip_addresses(), st.integers(0, 128)),
        st.ip_addresses().map(str),
    )
)
def test_vis05_block_ranges_are_networks_or_invalid_argument(value):
    try:
        network = ipaddress.ip_network(network_of(value))
    except InvalidArgument as exc:
        assert exc.message
        return
    assert network.prefixlen >= (16 if network.version == 4 else 32)
