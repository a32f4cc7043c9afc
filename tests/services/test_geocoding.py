"""Geocoding: the offline gazetteer places offices with no network; the online one is cached."""

from __future__ import annotations

import ast
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
from geopy.exc import GeocoderRateLimited, GeocoderServiceError, GeocoderTimedOut
from geopy.geocoders import Nominatim

from referral_service.adapters import geocoding
from referral_service.adapters.geocoding import (
    CachedOnlineGeocoder,
    GazetteerGeocoder,
    GeocodingError,
    GeocodingUnavailable,
    build_geocoder,
    normalize_country,
)

TOLERANCE_DEG = 0.1
KAOHSIUNG = (22.62, 120.31)
TAIPEI = (25.05, 121.53)
TOKYO = (35.69, 139.69)


@pytest.fixture(scope="module")
def gazetteer() -> GazetteerGeocoder:
    return GazetteerGeocoder()


def assert_near(place, expected: tuple[float, float]) -> None:
    assert abs(place.latitude - expected[0]) < TOLERANCE_DEG
    assert abs(place.longitude - expected[1]) < TOLERANCE_DEG


@pytest.mark.parametrize(("city", "country", "expected"), [
    ("Kaohsiung", "TW", KAOHSIUNG),
    ("Taipei", "TW", TAIPEI),
    ("Tokyo", "JP", TOKYO),
])
def test_city_and_country_resolve_offline(gazetteer, city, country, expected):
    place = gazetteer.geocode(city=city, country=country)
    assert_near(place, expected)
    assert (place.name, place.country) == (city, country)


@pytest.mark.parametrize("city", ["kaohsiung", "KAOHSIUNG", "  Kaohsiung  ", "Kao-hsiung"])
def test_city_match_ignores_case_spacing_and_takes_alternate_spellings(gazetteer, city):
    assert_near(gazetteer.geocode(city=city, country="TW"), KAOHSIUNG)


@pytest.mark.parametrize("city", ["São Paulo", "Sao Paulo", "SAO PAULO"])
def test_city_match_ignores_accents(gazetteer, city):
    place = gazetteer.geocode(city=city, country="BR")
    assert place.name == "São Paulo"
    assert_near(place, (-23.55, -46.64))


@pytest.mark.parametrize(("city", "country", "name"), [
    ("台北", "TW", "Taipei"),
    ("臺北市", "TW", "Taipei"),
    ("高雄", "TW", "Kaohsiung"),
    ("Saigon", "VN", "Ho Chi Minh City"),
    ("Ho Chi Minh City", "VN", "Ho Chi Minh City"),
])
def test_alternate_names_resolve_to_the_city(gazetteer, city, country, name):
    assert gazetteer.geocode(city=city, country=country).name == name


@pytest.mark.parametrize(("city", "expected"), [
    ("Hsinchu", (24.80, 120.97)),
    ("Taichung", (24.15, 120.68)),
    ("Tainan", (22.99, 120.21)),
    ("Taoyuan", (24.99, 121.30)),
    ("Changhua", (24.07, 120.55)),
    ("Douliu", (23.71, 120.54)),
    ("Pingtung", (22.67, 120.49)),
    ("Yilan", (24.76, 121.75)),
])
def test_taiwan_towns_resolve(gazetteer, city, expected):
    assert_near(gazetteer.geocode(city=city, country="TW"), expected)


@pytest.mark.parametrize(("city", "country", "expected"), [
    ("Osaka", "JP", (34.69, 135.50)),
    ("Seoul", "KR", (37.57, 126.98)),
    ("Hanoi", "VN", (21.02, 105.84)),
    ("Bangkok", "TH", (13.75, 100.50)),
    ("Kuala Lumpur", "MY", (3.14, 101.69)),
    ("Singapore", "SG", (1.29, 103.85)),
    ("Manila", "PH", (14.60, 120.98)),
    ("Hong Kong", "HK", (22.28, 114.17)),
    ("Shanghai", "CN", (31.22, 121.46)),
])
def test_regional_cities_resolve(gazetteer, city, country, expected):
    assert_near(gazetteer.geocode(city=city, country=country), expected)


def test_most_populous_of_same_named_cities_in_a_country_wins(gazetteer):
    # Fuchū in Tokyo (about 260,000 people) over Fuchū in Hiroshima (about 40,000).
    assert_near(gazetteer.geocode(city="Fuchu", country="JP"), (35.67, 139.48))


@pytest.mark.parametrize(("city", "country"), [("Paris", "FR"), ("Taoyuan", "TW")])
def test_city_without_country_is_the_most_populous_worldwide(gazetteer, city, country):
    assert gazetteer.geocode(city=city).country == country


def test_city_without_country_skips_small_towns_and_asks_for_the_country(gazetteer):
    with pytest.raises(GeocodingError) as raised:
        gazetteer.geocode(city="Pingtung")
    assert raised.value.field == "city"
    assert "country" in str(raised.value)


@pytest.mark.parametrize("city", ["Taipei City", "Kaohsiung City 806"])
def test_city_suffix_and_postal_code_are_ignored(gazetteer, city):
    assert gazetteer.geocode(city=city, country="TW").name in {"Taipei", "Kaohsiung"}


@pytest.mark.parametrize("country", ["TW", "tw", " Taiwan ", "TAIWAN", "TWN", "Republic of China"])
def test_country_name_accepted(gazetteer, country):
    assert normalize_country(country) == "TW"
    assert_near(gazetteer.geocode(city="Kaohsiung", country=country), KAOHSIUNG)


@pytest.mark.parametrize(("value", "code"), [
    ("Japan", "JP"), ("jp", "JP"), ("South Korea", "KR"), ("Korea", "KR"), ("Viet Nam", "VN"),
    ("Vietnam", "VN"), ("Hong Kong", "HK"), ("UK", "GB"), ("United States", "US"),
])
def test_normalize_country_returns_alpha_2(value, code):
    assert normalize_country(value) == code


@pytest.mark.parametrize("value", ["Atlantis", "XX", "T", ""])
def test_normalize_country_rejects_unknown_names(value):
    with pytest.raises(GeocodingError) as raised:
        normalize_country(value)
    assert raised.value.field == "country"


def test_unknown_city_names_the_city_field(gazetteer):
    with pytest.raises(GeocodingError) as raised:
        gazetteer.geocode(city="Atlantisville", country="TW")
    assert raised.value.field == "city"
    assert str(raised.value) == "Unknown city 'Atlantisville' in TW."


def test_unknown_country_names_the_country_field(gazetteer):
    with pytest.raises(GeocodingError) as raised:
        gazetteer.geocode(city="Kaohsiung", country="Atlantis")
    assert raised.value.field == "country"
    assert "Atlantis" in str(raised.value)


@pytest.mark.parametrize("blank", [{}, {"city": "", "country": " ", "address": None}])
def test_nothing_given_names_the_address_field(gazetteer, blank):
    with pytest.raises(GeocodingError) as raised:
        gazetteer.geocode(**blank)
    assert raised.value.field == "address"
    assert "city and country" in str(raised.value)


def test_country_alone_asks_for_a_city(gazetteer):
    with pytest.raises(GeocodingError) as raised:
        gazetteer.geocode(country="TW")
    assert raised.value.field == "city"


@pytest.mark.parametrize("address", [
    "Kaohsiung, Taiwan",
    "Kaohsiung, TW",
    "Kaohsiung TW",
    "kaohsiung tw",
    "No. 1, Zhongshan 2nd Rd, Qianzhen District, Kaohsiung City 806, Taiwan",
])
def test_address_city_country_form(gazetteer, address):
    place = gazetteer.geocode(address=address)
    assert (place.name, place.country) == ("Kaohsiung", "TW")
    assert_near(place, KAOHSIUNG)


@pytest.mark.parametrize("address", ["Singapore", "Hong Kong"])
def test_address_naming_a_city_state_resolves(gazetteer, address):
    assert gazetteer.geocode(address=address).name == address


def test_address_without_country_tries_each_part_worldwide(gazetteer):
    assert_near(gazetteer.geocode(address="Shibuya Crossing, Tokyo"), TOKYO)


def test_address_whose_last_word_is_a_country_code_falls_back_to_worldwide(gazetteer):
    # "Jersey" is a country (JE) with no Tokyo; the trailing word is only a hint.
    assert_near(gazetteer.geocode(address="Tokyo, Little Jersey"), TOKYO)


def test_address_with_separate_country_field(gazetteer):
    place = gazetteer.geocode(address="Qianzhen District, Kaohsiung", country="Taiwan")
    assert (place.name, place.country) == ("Kaohsiung", "TW")


def test_city_and_country_take_precedence_over_address(gazetteer):
    place = gazetteer.geocode(city="Taipei", country="TW", address="Kaohsiung, Taiwan")
    assert place.name == "Taipei"


def test_address_naming_a_country_is_not_resolved_in_another(gazetteer):
    with pytest.raises(GeocodingError) as raised:
        gazetteer.geocode(address="Kaohsiung, Japan")
    assert raised.value.field == "address"
    assert "JP" in str(raised.value)


@pytest.mark.parametrize("address", ["12 Nowhere Lane, Qwxzville", ", ,"])
def test_unresolvable_address_names_the_address_field(gazetteer, address):
    with pytest.raises(GeocodingError) as raised:
        gazetteer.geocode(address=address)
    assert raised.value.field == "address"
    assert "City, Country" in str(raised.value)


@pytest.mark.parametrize(("min_population", "tier"), [
    (15000, 15000), (20000, 15000), (5000, 5000), (2000, 1000), (1000, 1000), (100, 500),
])
def test_min_population_chooses_the_list(min_population, tier):
    assert GazetteerGeocoder(min_population).tier == tier


def test_default_list_holds_county_seats_the_15000_list_lacks(gazetteer):
    # Pingtung, a county seat of 200,000, is listed with population 0 from the 1000 list on.
    assert gazetteer.geocode(city="Pingtung", country="TW").name == "Pingtung"
    with pytest.raises(GeocodingError):
        GazetteerGeocoder(min_population=15000).geocode(city="Pingtung", country="TW")


def test_null_island_is_never_a_place():
    record = {"name": "Null", "latitude": 0.0, "longitude": 0.0, "countrycode": "XX",
              "population": 10, "alternatenames": []}
    assert geocoding._CityIndex([record]).find("null") is None


def test_gazetteer_builds_each_country_once_lazily_under_concurrency(monkeypatch):
    monkeypatch.setattr(geocoding, "_GAZETTEERS", {})
    real, calls = geocoding._country_records, []

    def counting(path, country):
        calls.append(country)
        time.sleep(0.05)  # widen the window in which a second build could start
        return real(path, country)

    monkeypatch.setattr(geocoding, "_country_records", counting)
    geocoder = GazetteerGeocoder(min_population=15000)
    assert calls == []
    with ThreadPoolExecutor(max_workers=8) as pool:
        places = list(pool.map(lambda _: geocoder.geocode(city="Kaohsiung", country="TW"),
                               range(16)))
    assert calls == ["TW"]
    assert len(set(places)) == 1


class FakeGeopy:
    """Stands in for a geopy geocoder: records queries, answers from a script."""

    def __init__(self, result=None, error: Exception | None = None) -> None:
        self.result, self.error = result, error
        self.queries: list[str] = []
        self.called_at: list[float] = []

    def geocode(self, query: str):
        self.queries.append(query)
        self.called_at.append(time.monotonic())
        if self.error is not None:
            raise self.error
        return self.result


class DictCache:
    def __init__(self) -> None:
        self.entries: dict[str, tuple[float, float]] = {}

    def get(self, key: str) -> tuple[float, float] | None:
        return self.entries.get(key)

    def put(self, key: str, latitude: float, longitude: float) -> None:
        self.entries[key] = (latitude, longitude)


FOUND = SimpleNamespace(latitude=22.6273, longitude=120.3014, address="Kaohsiung, Taiwan")


def online(fake: FakeGeopy, cache: DictCache | None = None, delay: float = 0.0):
    return CachedOnlineGeocoder(fake, cache=cache, min_delay_seconds=delay)


def test_online_geocoder_uses_cache_before_network():
    fake, cache = FakeGeopy(FOUND), DictCache()
    geocoder = online(fake, cache)
    first = geocoder.geocode(city="Kaohsiung", country="TW")
    again = geocoder.geocode(city="  kaohsiung ", country="Taiwan")
    assert fake.queries == ["Kaohsiung, Taiwan"]
    assert (again.latitude, again.longitude) == (first.latitude, first.longitude)
    assert again.country == "TW"


def test_online_geocoder_stores_results_in_the_cache():
    cache = DictCache()
    place = online(FakeGeopy(FOUND), cache).geocode(city="Kaohsiung", country="TW")
    assert list(cache.entries.values()) == [(FOUND.latitude, FOUND.longitude)]
    assert (place.latitude, place.longitude, place.country) == (22.6273, 120.3014, "TW")


def test_online_geocoder_answers_from_a_filled_cache_without_the_service():
    cache = DictCache()
    online(FakeGeopy(FOUND), cache).geocode(city="Kaohsiung", country="TW")
    broken = FakeGeopy(error=GeocoderServiceError("down"))
    place = online(broken, cache).geocode(city="Kaohsiung", country="TW")
    assert broken.queries == []
    assert_near(place, KAOHSIUNG)


def test_online_geocoder_works_without_a_cache():
    fake = FakeGeopy(FOUND)
    geocoder = online(fake)
    geocoder.geocode(city="Kaohsiung", country="TW")
    geocoder.geocode(city="Kaohsiung", country="TW")
    assert len(fake.queries) == 2


def test_online_query_joins_fields_without_repeats():
    fake = FakeGeopy(FOUND)
    online(fake).geocode(address="1 Zhongshan 2nd Rd, Kaohsiung", city="Kaohsiung", country="TW")
    assert fake.queries == ["1 Zhongshan 2nd Rd, Kaohsiung, Taiwan"]


def test_online_geocoder_without_result_names_the_field():
    with pytest.raises(GeocodingError) as raised:
        online(FakeGeopy(None)).geocode(city="Atlantisville", country="TW")
    assert raised.value.field == "city"
    assert "Atlantisville" in str(raised.value)


def test_online_geocoder_never_returns_null_island():
    null = SimpleNamespace(latitude=0.0, longitude=0.0, address="")
    with pytest.raises(GeocodingError):
        online(FakeGeopy(null)).geocode(address="Somewhere")


@pytest.mark.parametrize("error", [
    GeocoderServiceError("500"), GeocoderTimedOut("slow"), GeocoderRateLimited("429"),
])
@pytest.mark.parametrize(("given", "field"), [
    ({"city": "Kaohsiung", "country": "TW"}, "city"),
    ({"country": "TW", "address": "Kaohsiung"}, "country"),
    ({"address": "Kaohsiung"}, "address"),
])
def test_online_service_failure_says_unavailable(error, given, field):
    cache = DictCache()
    with pytest.raises(GeocodingUnavailable) as raised:
        online(FakeGeopy(error=error), cache).geocode(**given)
    assert isinstance(raised.value, GeocodingError)
    assert raised.value.field == field
    assert "unavailable" in str(raised.value)
    assert cache.entries == {}


def test_online_geocoder_rejects_empty_input_without_a_call():
    fake = FakeGeopy(FOUND)
    with pytest.raises(GeocodingError) as raised:
        online(fake).geocode()
    assert raised.value.field == "address"
    assert fake.queries == []


def test_online_geocoder_spaces_its_calls():
    fake = FakeGeopy(FOUND)
    geocoder = online(fake, delay=0.1)
    geocoder.geocode(city="Kaohsiung", country="TW")
    geocoder.geocode(city="Taipei", country="TW")
    assert fake.called_at[1] - fake.called_at[0] >= 0.09


def test_build_geocoder_defaults_to_the_offline_gazetteer():
    assert isinstance(build_geocoder("gazetteer"), GazetteerGeocoder)


def test_build_geocoder_nominatim_is_rate_limited_cached_and_named():
    cache = DictCache()
    geocoder = build_geocoder("Nominatim", user_agent="referral-service-test", cache=cache)
    assert isinstance(geocoder, CachedOnlineGeocoder)
    assert isinstance(geocoder.geocoder, Nominatim)
    assert geocoder.geocoder.headers["User-Agent"] == "referral-service-test"
    assert geocoder.min_delay_seconds >= 1.0
    assert geocoder.cache is cache


def test_build_geocoder_rejects_unknown_names():
    with pytest.raises(ValueError, match="google"):
        build_geocoder("google")


def test_geocoding_imports_no_web_or_database_framework():
    source = Path(geocoding.__file__).read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported.isdisjoint({"flask", "flask_smorest", "sqlalchemy", "models"})


def test_place_is_immutable():
    place = geocoding.Place(1.0, 2.0, "X", "TW")
    with pytest.raises(AttributeError):
        place.latitude = 3.0  # type: ignore[misc]
