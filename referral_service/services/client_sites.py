"""A client's work sites (SPEC section 8): recorded, listed, named by matches and referrals.

A site is recorded by one firm for one client (a label and a place, resolved as every place
is: services/places) and is that firm's: a partner sees and names only the sites its own
firm recorded, head office and the CRM every site. A referral may name only a site of its
client recorded by its referrer; its place then is the client's place of the referral.
A partner records sites only for a client it knows: one it referred, accepted or visited.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Client, ClientSite, Organization, Referral, Visit, utcnow
from referral_service.adapters.geocoding import Geocoder
from referral_service.services import clients, places
from referral_service.services.auth import Principal
from referral_service.services.errors import Conflict, Forbidden, NotFound, ValidationFailed
from referral_service.services.unit_of_work import writes
from referral_service.texts import N_


@writes
def add(*, session: Session, client_id: int, data: dict[str, Any], actor: Principal,
        geocoder: Geocoder) -> ClientSite:
    """Record a site (label, location) of a client for a firm: the caller's own for a
    partner, `organization_id` for head office; 409 if the firm has a site of that label."""
    _known_client(session, client_id, actor)
    owner = _owner(session, data.get("organization_id"), actor)
    place = places.resolve(data["location"], geocoder, field="location")
    return _insert(session, client_id, owner, data["label"], place, {})


def record_for_referral(*, session: Session, client_id: int, organization_id: int, label: str,
                        place: places.ResolvedPlace) -> ClientSite:
    """Record the referrer's new site of a referral's client, in the referral's transaction
    (POST /referrals with new_client_site, its place resolved by the caller); 409 if the
    firm has a site of that label for the client (name it by client_site_id instead)."""
    return _insert(session, client_id, organization_id, label, place, {"new_client_site": {}})


def _insert(session: Session, client_id: int, owner: int, label: str,
            place: places.ResolvedPlace, errors_under: dict[str, Any]) -> ClientSite:
    """Add a site; a label the firm already has for the client is a 409 whose errors name
    `label`, nested in errors_under's one key if it has one."""
    label = label.strip()
    site = ClientSite(client_id=client_id, organization_id=owner, label=label,
                      label_key=label.casefold(), created_at=utcnow(), **place.as_dict())
    try:
        with session.begin_nested():
            session.add(site)
    except IntegrityError:
        errors: dict[str, Any] = {"label": [N_("Already taken.")]}
        for key in errors_under:
            errors = {key: errors}
        raise Conflict(N_("Organization %(owner)s already has a site labelled "
                          "%(label)r for client %(client_id)s.", owner=owner, label=label,
                          client_id=client_id), errors=errors) from None
    return site


def list_(*, session: Session, client_id: int, actor: Principal) -> list[ClientSite]:
    """Return the client's sites the caller may see, by id: a partner its own firm's."""
    _known_client(session, client_id, actor)
    query = select(ClientSite).where(ClientSite.client_id == client_id)
    if actor.is_partner:
        query = query.where(ClientSite.organization_id == actor.organization_id)
    return list(session.scalars(query.order_by(ClientSite.id)))


def of_named_client(*, session: Session, name: str | None, external_ref: str | None,
                    organization_id: int) -> list[ClientSite]:
    """Return the sites a firm recorded of the client so named (services/clients.find), by
    id: none for a client not known yet. What the portal's refer form offers."""
    if not (name or "").strip():
        return []
    client = clients.find(session=session, name=name, external_ref=external_ref)
    if client is None:
        return []
    return list(session.scalars(select(ClientSite).where(
        ClientSite.client_id == client.id, ClientSite.organization_id == organization_id)
        .order_by(ClientSite.id)))


def place_of(site: ClientSite) -> places.ResolvedPlace:
    """Return a site's place, as kept."""
    return places.ResolvedPlace(site.latitude, site.longitude, site.city, site.country,
                                site.address)


def place_for_match(*, session: Session, actor: Principal, site_id: int
                    ) -> places.ResolvedPlace:
    """Return the place of a site the caller may name in a match (422 otherwise)."""
    site = session.get(ClientSite, site_id)
    if site is None or not (actor.is_staff or site.organization_id == actor.organization_id):
        raise _unknown(site_id)
    return place_of(site)


def for_referral(*, session: Session, site_id: int, referrer_id: int) -> ClientSite:
    """Return a site the referrer recorded, for its referral (422 otherwise); the use case
    checks it is the referral's client's (`check_client`) once it has found the client."""
    site = session.get(ClientSite, site_id)
    if site is None or site.organization_id != referrer_id:
        raise _unknown(site_id, "of the referrer")
    return site


def check_client(site: ClientSite, client_id: int) -> None:
    """Refuse (422) a site that is not the referral's client's."""
    if site.client_id != client_id:
        raise ValidationFailed(N_("The client site is another client's."), {
            "client_site_id": [N_("Site %(id)s is not a site of this client.", id=site.id)]})


def _unknown(site_id: int, whose: str = "") -> ValidationFailed:
    return ValidationFailed(N_("The client site does not exist."), {
        "client_site_id": [N_("No client site %(site_id)s %(whose)s.", site_id=site_id,
                              whose=whose) if whose
                           else N_("No client site %(site_id)s.", site_id=site_id)]})


def _known_client(session: Session, client_id: int, actor: Principal) -> None:
    """404 unless the client exists and the caller may know it (a partner: a client it
    referred, accepted or visited)."""
    if session.get(Client, client_id) is None:
        raise NotFound(N_("Client %(client_id)s does not exist.", client_id=client_id))
    if not actor.is_partner:
        return
    own = actor.organization_id
    referred = exists().where(Referral.client_id == client_id, or_(
        Referral.referrer_organization_id == own,
        and_(Referral.receiver_organization_id == own, Referral.accepted_at.is_not(None))))
    visited = exists().where(Visit.client_id == client_id, Visit.organization_id == own)
    known = session.scalar(select(or_(referred, visited)))
    if not known:
        raise NotFound(N_("Client %(client_id)s does not exist.", client_id=client_id))


def _owner(session: Session, organization_id: int | None, actor: Principal) -> int:
    """The firm a new site is recorded for."""
    if actor.is_partner:
        if organization_id not in (None, actor.organization_id):
            raise Forbidden(N_("A partner records sites only for its own firm."))
        return actor.organization_id
    if organization_id is None:
        raise ValidationFailed(N_("Name the firm the site is recorded for."), {
            "organization_id": [N_("Required for head office and the CRM.")]})
    if session.get(Organization, organization_id) is None:
        raise ValidationFailed(N_("Organization %(organization_id)s does not exist.",
                                  organization_id=organization_id), {
            "organization_id": [N_("No organization %(organization_id)s.",
                                   organization_id=organization_id)]})
    return organization_id
