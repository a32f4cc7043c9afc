"""Places into coordinates: the one resolver of offices, matches and clients.

The same rules everywhere: coordinates given are kept as given; otherwise the configured
geocoder resolves city/country/address. A place it cannot find is a 422 naming the field
(`errors` nested under the caller's field path); a geocoder that is down is a 503 with
Retry-After, whatever the place is for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from referral_service.adapters.geocoding import Geocoder, GeocodingError, GeocodingUnavailable
from referral_service.services.errors import Unavailable, ValidationFailed
from referral_service.texts import N_


@dataclass(frozen=True, slots=True)
class ResolvedPlace:
    """A place as given, with its coordinates: (lat, lon) in degrees."""

    latitude: float
    longitude: float
    city: str | None = None
    country: str | None = None
    address: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the place as plain data (the API's and the tables' field names)."""
        return {"latitude": self.latitude, "longitude": self.longitude, "city": self.city,
                "country": self.country, "address": self.address}


def columns_of(place: ResolvedPlace | None) -> dict[str, Any]:
    """Return a place's columns (latitude ... address) for a row, all None without a place."""
    return place.as_dict() if place else dict.fromkeys(
        ("latitude", "longitude", "city", "country", "address"))


def resolve(place: Mapping[str, Any], geocoder: Geocoder, *, field: str) -> ResolvedPlace:
    """Return `place` with its coordinates; 422 under `field` if unknown, 503 if unavailable."""
    try:
        return _locate(place, geocoder)
    except GeocodingError as error:
        raise ValidationFailed(N_("The %(field)s could not be resolved.", field=field),
                               _nest(field, {error.field: [_message(error)]})) from None


def resolve_each(
    places: Sequence[Mapping[str, Any]], geocoder: Geocoder, *, field: str
) -> list[ResolvedPlace]:
    """Resolve every place of a list; one 422 naming each index that fails (503 as above)."""
    resolved: list[ResolvedPlace] = []
    errors: dict[str, Any] = {}
    for index, place in enumerate(places):
        try:
            resolved.append(_locate(place, geocoder))
        except GeocodingError as error:
            errors[str(index)] = {error.field: [_message(error)]}
    if errors:
        raise ValidationFailed(N_("A place in %(field)s could not be resolved.",
                                  field=field), {field: errors})
    return resolved


def _locate(place: Mapping[str, Any], geocoder: Geocoder) -> ResolvedPlace:
    city, country, address = place.get("city"), place.get("country"), place.get("address")
    country = country.upper() if country else None
    if place.get("latitude") is not None and place.get("longitude") is not None:
        return ResolvedPlace(float(place["latitude"]), float(place["longitude"]), city,
                             country, address)
    try:
        found = geocoder.geocode(city=city, country=country, address=address)
    except GeocodingUnavailable as error:
        raise Unavailable(_message(error)) from None
    return ResolvedPlace(found.latitude, found.longitude, city, country or found.country or None,
                         address)


def _nest(path: str, errors: dict[str, Any]) -> dict[str, Any]:
    """{"client.location": e} -> {"client": {"location": e}}."""
    for part in reversed(path.split(".")):
        errors = {part: errors}
    return errors


def _message(error: Exception) -> str:
    """The adapter's message as it worded it (a texts.Text, translated in the portal)."""
    return error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
