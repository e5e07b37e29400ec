"""Search engine and keywords from a referrer URL (CRM-08 visits: 検索エンジン, 検索キーワード)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

_ENGINES = {
    "google": ("Google", "q"),
    "bing": ("Bing", "q"),
    "yahoo": ("Yahoo!", "p"),
    "duckduckgo": ("DuckDuckGo", "q"),
    "baidu": ("Baidu", "wd"),
    "yandex": ("Yandex", "text"),
    "naver": ("Naver", "query"),
    "ecosia": ("Ecosia", "q"),
}


def search_terms(referrer: str) -> tuple[str, str]:
    """(engine, keywords) when the referrer is a known search engine's results page."""
    try:
        parts = urlsplit(referrer or "")
    except ValueError:
        return "", ""
    host = (parts.hostname or "").lower()
    labels = host.split(".")
    for key, (engine, param) in _ENGINES.items():
        if key in labels:
            return engine, " ".join(parse_qs(parts.query).get(param, [""])[0].split())
    return "", ""
