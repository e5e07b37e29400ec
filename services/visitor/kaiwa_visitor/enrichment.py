"""VIS-02: what a visit's first event says about it: the client (user agent), the
location (the address, in a MaxMind-format database), the source (referrer: search
engine and keywords), the campaign (utm_* of the URL), the language and the screen.

The database is read with `maxminddb` (its C extension, memory-mapped) from
KAIWA_GEOIP_DB, by default the GeoLite2 City database of July 2018 that the
`maxminddb-geolite2` package ships (CC BY-SA; see the README for what it covers), so
tracking works with no download. Any MaxMind City-format file (GeoIP2/GeoLite2 City,
DB-IP City Lite in MMDB form) can replace it.
"""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache

import maxminddb

from .domain.model import Location, VisitContext
from .domain.sources import campaign_of, search_terms
from .domain.tracking import PageViewInput
from .domain.useragent import parse_user_agent

log = logging.getLogger("kaiwa.visitor.enrichment")


def embedded_database() -> str:
    from _maxminddb_geolite2 import geolite2_database

    return geolite2_database()


def _name(record: dict | None) -> str:
    return ((record or {}).get("names") or {}).get("en", "")


def location_of(found: dict | None) -> Location | None:
    """A City-format record as a Location (None when the address is not in the database)."""
    if not found:
        return None
    place = found.get("location") or {}
    country = found.get("country") or found.get("registered_country") or {}
    subdivisions = found.get("subdivisions") or [{}]
    return Location(
        country_code=country.get("iso_code", ""),
        country=_name(country),
        region=_name(subdivisions[0]),
        city=_name(found.get("city")),
        postcode=(found.get("postal") or {}).get("code", ""),
        latitude=place.get("latitude"),
        longitude=place.get("longitude"),
        time_zone=place.get("time_zone", ""),
    )


class Enricher:
    def __init__(self, geoip_path: str = ""):
        self.geoip_path = geoip_path or embedded_database()
        self._reader = maxminddb.open_database(self.geoip_path, maxminddb.MODE_AUTO)
        self.location = lru_cache(maxsize=50_000)(self._locate)

    def _locate(self, ip: str) -> Location | None:
        if not ip:
            return None
        try:
            address = ipaddress.ip_address(ip)
            if not address.is_global:
                return None
            return location_of(self._reader.get(address))
        except (ValueError, maxminddb.InvalidDatabaseError) as exc:
            log.warning("GeoIP lookup failed", extra={"fields": {"ip": ip, "error": repr(exc)}})
            return None

    def context(self, view: PageViewInput) -> VisitContext:
        engine, keywords = search_terms(view.referrer) if view.referrer else ("", "")
        return VisitContext(
            client=parse_user_agent(view.user_agent),
            location=self.location(view.ip),
            referrer=view.referrer,
            search_engine=engine,
            search_keywords=keywords,
            campaign=campaign_of(view.url),
            ip=view.ip,
            language=view.language,
            screen=view.screen,
        )

    def close(self) -> None:
        self._reader.close()
