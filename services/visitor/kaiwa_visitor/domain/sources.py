"""Where a visit comes from (VIS-02), pure: the search engine and keywords of a referrer,
the campaign of a URL's utm_* parameters, the language and the screen. Any input gives an
answer (empty when there is nothing to tell); none raises."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import parse_qs, urlsplit

from .model import Campaign

# Search engines: a label of the referrer's host -> (name, query parameters in order).
# Matched on the host's labels, so www.google.co.jp and news.google.com are Google.
ENGINES: dict[str, tuple[str, tuple[str, ...]]] = {
    "google": ("Google", ("q",)),
    "bing": ("Bing", ("q",)),
    "yahoo": ("Yahoo!", ("p", "q")),
    "duckduckgo": ("DuckDuckGo", ("q",)),
    "baidu": ("Baidu", ("wd", "word")),
    "yandex": ("Yandex", ("text",)),
    "naver": ("Naver", ("query",)),
    "ecosia": ("Ecosia", ("q",)),
    "ask": ("Ask", ("q",)),
    "aol": ("AOL", ("q", "query")),
    "sogou": ("Sogou", ("query",)),
    "seznam": ("Seznam", ("q",)),
    "goo": ("goo", ("MT",)),
    "biglobe": ("BIGLOBE", ("q",)),
    "qwant": ("Qwant", ("q",)),
    "startpage": ("Startpage", ("query", "q")),
    "brave": ("Brave", ("q",)),
}
MAX_KEYWORDS = 200
MAX_TAG = 200
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8}){0,4}")
UTM = {"utm_source": "source", "utm_medium": "medium", "utm_term": "term", "utm_content": "content", "utm_campaign": "name"}


def _query(url: str) -> dict[str, list[str]]:
    try:
        return parse_qs(urlsplit(url).query, keep_blank_values=False, max_num_fields=100)
    except ValueError:
        return {}


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _clean(value: str, limit: int) -> str:
    return " ".join(value.split())[:limit]


@lru_cache(maxsize=20_000)
def search_terms(referrer: str) -> tuple[str, str]:
    """(engine, keywords) of a search engine's referrer; ("", "") for any other."""
    labels = _host(referrer).split(".")
    for label in labels[:-1]:  # never the top-level domain
        if label in ENGINES:
            name, params = ENGINES[label]
            query = _query(referrer)
            words = next((query[p][0] for p in params if query.get(p)), "")
            return name, _clean(words, MAX_KEYWORDS)
    return "", ""


@lru_cache(maxsize=20_000)
def campaign_of(url: str) -> Campaign:
    """The campaign tags of a page URL (utm_source, utm_medium, utm_term, utm_content,
    utm_campaign); empty fields for tags not given."""
    if "utm_" not in url:
        return Campaign()
    query = _query(url)
    return Campaign(**{name: _clean(query[tag][0], MAX_TAG) for tag, name in UTM.items() if query.get(tag)})


def language_of(value: str) -> str:
    """The first language tag of a navigator.language or Accept-Language value
    ("ja-JP,ja;q=0.9,en;q=0.8" -> "ja-JP"); "" when there is none."""
    first = (value or "").split(",", 1)[0].split(";", 1)[0].strip()
    return first if _LANGUAGE.fullmatch(first) else ""


def screen_of(width: int, height: int) -> str:
    """ "1920x1080", or "" unless both are plausible pixel counts."""
    if 0 < width <= 20_000 and 0 < height <= 20_000:
        return f"{width}x{height}"
    return ""
