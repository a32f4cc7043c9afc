"""Client visits and the leads they bring back (SPEC section 9).

A salesperson returns from every visit with an order commitment or a list of potential
clients (leads); a report with neither needs its reason (the schema refuses one without), is
stored marked `empty_handed`, counted, and listed for the person's manager. Each lead is a
client for attribution: a lead whose client another firm already holds (an open referral, or
one converted within the attribution window) is a 409 naming that referral. A lead is `open`
until it is `won` (the firm's own client), `lost`, or `referred` (handed on by a referral whose
source is the visit and the lead: services/referrals).

Recording a visit is one transaction: the visited client and each lead's client are found or
created and locked in the order given (as a referral locks its client), then the visit, its
leads, the audit entry and the events (`visit.recorded`, and `visit.empty_handed` for one
without a commitment or leads) are written together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Client, Lead, Referral, Visit, utcnow
from referral_service.adapters import sql
from referral_service.adapters.geocoding import Geocoder
from referral_service.schemas.visits import dump_visit
from referral_service.services import (
    audit,
    clients,
    events,
    idempotency,
    matching,
    months,
    people,
    places,
    referrals,
    unit_of_work,
)
from referral_service.services.auth import Principal
from referral_service.services.errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from referral_service.services.organizations import normalize_skills
from referral_service.services.pages import page_of
from referral_service.texts import N_

LEAD_MOVES = {"open": ("won", "lost")}


@dataclass(frozen=True, slots=True)
class RecordedVisit:
    """A recorded visit and its body as VisitSchema shows it (the first body, on a repeat)."""

    visit: Visit
    body: dict[str, Any]


# ---------------------------------------------------------------------------------- record


def record_visit(
    *, session: Session, data: dict[str, Any], actor: Principal, geocoder: Geocoder,
    attribution_window_days: int, idempotency_key: str | None = None,
) -> RecordedVisit:
    """Record a visit report with its commitment and leads; honours Idempotency-Key."""
    visited = _place((data["client"] or {}).get("location"), geocoder, "client.location")
    lead_places = [_place(lead.get("location"), geocoder, f"leads.{i}.location")
                   for i, lead in enumerate(data.get("leads") or ())]
    visit, body = idempotency.once(
        session=session, actor=actor, key=idempotency_key,
        digest=lambda: idempotency.request_hash(data, "POST /visits"),
        create=lambda: _create(session, data, actor, visited, lead_places,
                               attribution_window_days),
        load=lambda visit_id: session.get(Visit, visit_id))
    return RecordedVisit(visit, body)


def _place(given: dict[str, Any] | None, geocoder: Geocoder, field: str
           ) -> places.ResolvedPlace | None:
    return places.resolve(given, geocoder, field=field) if given else None


def _create(
    session: Session, data: dict[str, Any], actor: Principal,
    visited: places.ResolvedPlace | None, lead_places: list[places.ResolvedPlace | None],
    window_days: int,
) -> tuple[Visit, dict[str, Any]]:
    """Write the visit, its leads, the audit entry and the events; return the visit and its
    body (VisitSchema's, compiled: the events' payload and the response).

    The rows go in as the referral's do (adapters/sql.py: one statement for the clients'
    lookup, one for the new clients, one for the visit, one for the leads, one for the audit
    entry and events) and the objects are built from the values written, not read back.
    """
    person = _salesperson(session, data["person_id"], actor)
    leads_in = data.get("leads") or []
    skills = [_lead_skills(lead_in, index) for index, lead_in in enumerate(leads_in)]
    now = utcnow()
    # Lock order: the clients (the visited one and every lead's) in one statement, by id.
    found = clients.find_or_create_many(session=session, wanted=[
        clients.Wanted(data["client"]["name"], data["client"].get("external_ref"), visited),
        *(clients.Wanted(lead_in["name"], lead_in.get("external_ref"), place)
          for lead_in, place in zip(leads_in, lead_places, strict=True))])
    (client, _), lead_clients = found[0], found[1:]
    _refuse_held_leads(session, lead_clients, person.organization_id, now, window_days)
    commitment = data.get("commitment") or {}
    empty_handed = not commitment and not leads_in
    values = {
        "organization_id": person.organization_id, "person_id": person.id,
        "client_id": client.id, "visited_at": data["visited_at"].astimezone(UTC),
        "commitment_description": commitment.get("description"),
        "commitment_amount": commitment.get("amount"),
        "commitment_currency": commitment.get("currency"),
        "commitment_expected_on": commitment.get("expected_on"),
        "notes": data.get("notes") or "", "empty_handed": empty_handed,
        "empty_handed_reason": data.get("empty_handed_reason"), "created_by": actor.name,
        "created_at": now, **clients.as_named(data["client"], visited)}
    visit_id = sql.insert_rows(session, [(Visit, values)])
    lead_rows = [_lead_values(visit_id, person, lead_in, lead_client, place, lead_skills, now)
                 for lead_in, (lead_client, _), place, lead_skills
                 in zip(leads_in, lead_clients, lead_places, skills, strict=True)]
    lead_ids = sql.insert_returning_ids(session, Lead, lead_rows) if lead_rows else []
    leads = [sql.built(Lead, {**row, "id": lead_id})
             for row, lead_id in zip(lead_rows, lead_ids, strict=True)]
    visit = sql.built(Visit, {**values, "id": visit_id}, client=client, leads=leads)
    sql.as_loaded(session, *leads, visit)
    body = dump_visit(visit)
    side_rows = [
        audit.entry(actor=actor, action="visit.create", object_type="visit",
                    object_id=visit_id, changes={
                        "person_id": person.id, "client_id": client.id,
                        "leads": len(leads_in), "commitment": bool(commitment),
                        "empty_handed": empty_handed}),
        events.outbox_row(type_="visit.recorded", payload=body)]
    if empty_handed:
        side_rows.append(events.outbox_row(type_="visit.empty_handed", payload=body))
    sql.insert_rows(session, side_rows)
    month = values["visited_at"].strftime("%Y-%m")
    if month < now.strftime("%Y-%m"):
        # A visit reported in a later month counts in its own; if that month is closed, the
        # change is a correction in the first open month (SPEC section 10).
        months.book_changes(session=session, touched={month: {person.organization_id: set()}},
                            reason="Visit reported after its month closed.", actor=actor)
    return visit, body


def _lead_skills(lead_in: dict[str, Any], index: int) -> list[str]:
    try:
        return normalize_skills(lead_in.get("skills") or [])
    except ValueError:
        raise ValidationFailed(N_("A skill has no letters or digits."), {"leads": {
            str(index): {"skills": [N_("Every skill needs letters or digits.")]}}}) from None


def _lead_values(
    visit_id: int, person: Any, lead_in: dict[str, Any], client: Client,
    place: places.ResolvedPlace | None, skills: list[str], now: datetime,
) -> dict[str, Any]:
    """Return the row of one lead, every column given (the object is built from it)."""
    return {
        "organization_id": person.organization_id, "visit_id": visit_id,
        "person_id": person.id, "client_id": client.id, "name": lead_in["name"].strip(),
        "external_ref": (lead_in.get("external_ref") or "").strip() or None,
        "contact": lead_in.get("contact") or "", "skills": skills,
        "description": lead_in.get("description") or "",
        "relationship": lead_in.get("relationship") or "",
        **places.columns_of(place), "status": "open", "status_reason": None,
        "referral_id": None, "created_at": now, "updated_at": now, "version": 1}




def _refuse_held_leads(
    session: Session, lead_clients: list[tuple[Client, bool]], organization_id: int,
    now: datetime, window_days: int,
) -> None:
    """Refuse (409) a lead whose client another firm's referral holds (open, or converted
    within the attribution window); a client created just now has no referral yet."""
    stored = [client.id for client, created in lead_clients if not created]
    if not stored:
        return
    held = referrals.attributed_referrals(session, stored, now, window_days)
    for index, (client, _) in enumerate(lead_clients):
        holder = held.get(client.id)
        if holder is not None and organization_id not in (holder.referrer_organization_id,
                                                          holder.receiver_organization_id):
            raise Conflict(
                N_("Lead %(index)s is already attributed to referral %(id)s of "
                   "another firm; the first firm to register a client keeps the "
                   "credit.", index=index, id=holder.id),
                existing_referral_id=holder.id, lead_index=index)


def _salesperson(session: Session, person_id: int, actor: Principal) -> Any:
    """Return (id, organization_id, active) of the active person the report is for, if the
    caller may report for them (a row, not the Person: a twelfth of a visit's CPU less)."""
    person = sql.person_row(session, person_id)
    scope = people.scope_of(session=session, actor=actor)
    if person is None or not scope.covers(person.organization_id, person.id):
        raise ValidationFailed(N_("The report names a person you cannot report for."), {
            "person_id": [N_("No person %(person_id)s among the people you report for.",
                             person_id=person_id)]})
    if not person.active:
        raise ValidationFailed(N_("The person is inactive."), {
            "person_id": [N_("Person %(person_id)s is inactive.", person_id=person_id)]})
    return person


# ------------------------------------------------------------------------------------ reads


def get_visit(*, session: Session, visit_id: int, actor: Principal) -> Visit:
    """Return one visit the caller may see."""
    visit = session.get(Visit, visit_id)
    scope = people.scope_of(session=session, actor=actor)
    if visit is None or not scope.covers(visit.organization_id, visit.person_id):
        raise NotFound(N_("Visit %(visit_id)s does not exist.", visit_id=visit_id))
    return visit


def list_visits(
    *, session: Session, actor: Principal, page: int, page_size: int,
    person_id: int | None = None, organization_id: int | None = None,
    empty_handed: bool | None = None, visited_from: Any = None, visited_to: Any = None,
) -> tuple[list[Visit], int]:
    """Return one page of the visits the caller may see: empty-handed ones first, then the
    latest first (what a manager reads first), and the total."""
    query = _scoped(select(Visit), Visit, people.scope_of(session=session, actor=actor))
    if person_id is not None:
        query = query.where(Visit.person_id == person_id)
    if organization_id is not None:
        query = query.where(Visit.organization_id == organization_id)
    if empty_handed is not None:
        query = query.where(Visit.empty_handed.is_(empty_handed))
    if visited_from is not None:
        query = query.where(Visit.visited_at >= _day_start(visited_from))
    if visited_to is not None:
        query = query.where(Visit.visited_at < _day_start(visited_to) + timedelta(days=1))
    return page_of(session, query, Visit.empty_handed.desc(), Visit.visited_at.desc(),
                   Visit.id.desc(), page=page, page_size=page_size)


def _day_start(day: Any) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _scoped(query: Any, model: type[Visit] | type[Lead], scope: people.Scope) -> Any:
    if scope.organization_id is not None:
        query = query.where(model.organization_id == scope.organization_id)
    if scope.person_ids is not None:
        query = query.where(model.person_id.in_(scope.person_ids))
    return query


def get_lead(*, session: Session, lead_id: int, actor: Principal) -> Lead:
    """Return one lead the caller may see."""
    lead = session.get(Lead, lead_id)
    scope = people.scope_of(session=session, actor=actor)
    if lead is None or not scope.covers(lead.organization_id, lead.person_id):
        raise NotFound(N_("Lead %(lead_id)s does not exist.", lead_id=lead_id))
    return lead


def list_leads(
    *, session: Session, actor: Principal, page: int, page_size: int,
    person_id: int | None = None, organization_id: int | None = None,
    visit_id: int | None = None, status: str | None = None,
) -> tuple[list[Lead], int]:
    """Return one page of the leads the caller may see, newest first, and the total."""
    query = _scoped(select(Lead), Lead, people.scope_of(session=session, actor=actor))
    for column, value in ((Lead.person_id, person_id), (Lead.organization_id, organization_id),
                          (Lead.visit_id, visit_id), (Lead.status, status)):
        if value is not None:
            query = query.where(column == value)
    return page_of(session, query, Lead.id.desc(), page=page, page_size=page_size)


# ------------------------------------------------------------------------------- lifecycle


def move_lead(
    *, session: Session, lead_id: int, status: str, reason: str | None, actor: Principal,
    expected_version: int | None = None,
) -> Lead:
    """Mark an open lead won or lost; 409 if it is not open."""

    def work() -> Lead:
        lead = _locked_lead(session, lead_id, actor)
        if expected_version is not None and lead.version != expected_version:
            raise PreconditionFailed(N_("The lead changed since it was read (stale If-Match)."))
        if status not in LEAD_MOVES.get(lead.status, ()):
            raise InvalidTransition(
                N_("A %(current)s lead cannot become %(status)s; only an open lead is won, "
                   "lost or referred.", current=lead.status, status=status),
                current_status=lead.status)
        previous = lead.status
        lead.status, lead.status_reason, lead.updated_at = status, reason, utcnow()
        session.flush()
        audit.record(session=session, actor=actor, action="lead.move", object_type="lead",
                     object_id=lead.id,
                     changes={"status": {"from": previous, "to": status}, "reason": reason})
        return lead

    return unit_of_work.run(session, work)


def _locked_lead(session: Session, lead_id: int, actor: Principal) -> Lead:
    lead = session.scalars(select(Lead).where(Lead.id == lead_id).with_for_update()
                           .execution_options(populate_existing=True)).one_or_none()
    scope = people.scope_of(session=session, actor=actor)
    if lead is None or not scope.covers(lead.organization_id, lead.person_id):
        raise NotFound(N_("Lead %(lead_id)s does not exist.", lead_id=lead_id))
    return lead


def refer_lead(
    *, session: Session, lead_id: int, data: dict[str, Any], actor: Principal,
    index: matching.IndexSource, geocoder: Geocoder, default_weights: Any,
    attribution_window_days: int, idempotency_key: str | None = None,
    auto_reoffer_default: bool = True, require_consent: bool = False,
) -> referrals.Recorded:
    """Refer an open lead to the firm that fits its need and place best (or to the one named),
    recording a referral whose source is the visit and the lead; the lead becomes referred.

    The referral's use case locks the lead after its client and checks it is still open, so
    the same lead referred twice at once gives one referral and one 409. With an
    Idempotency-Key the key is claimed first, on this request's own body and lead: a repeat
    gets the first answer, not "the lead is referred already", and the match is not run again
    (its answer could differ by then).
    """
    if require_consent and not data.get("consent"):
        message = N_(referrals.CONSENT_REQUIRED.template, field="consent")
        raise ValidationFailed(message, {"consent": [message]})

    def create() -> tuple[Any, dict[str, Any]]:
        recorded = _refer_lead(session, lead_id, data, actor, index, geocoder, default_weights,
                               attribution_window_days, auto_reoffer_default, require_consent)
        return recorded.referral, recorded.body

    referral, body = idempotency.once(
        session=session, actor=actor, key=idempotency_key,
        digest=lambda: idempotency.request_hash({"lead_id": lead_id, **data},
                                                endpoint="leads.refer"),
        create=create, load=lambda referral_id: session.get(Referral, referral_id))
    return referrals.Recorded(referral, body)


def _refer_lead(
    session: Session, lead_id: int, data: dict[str, Any], actor: Principal,
    index: matching.IndexSource, geocoder: Geocoder, default_weights: Any,
    attribution_window_days: int, auto_reoffer_default: bool, require_consent: bool,
) -> referrals.Recorded:
    lead = get_lead(session=session, lead_id=lead_id, actor=actor)
    if lead.status != "open":  # before ranking firms for it; the referral checks again
        raise referrals.lead_not_open(lead)
    receiver_id = data.get("receiver_organization_id")
    if receiver_id == lead.organization_id:
        # The lead's own firm, which the request cannot know from its body alone: a 409.
        raise Conflict(N_("The lead already belongs to this firm: refer it to another firm, or "
                          "mark it won when it becomes your client."))
    score = None
    if receiver_id is None:
        receiver_id, score = _best_firm(lead, actor, index, geocoder, default_weights)
    body = {
        "referrer_organization_id": lead.organization_id,
        "receiver_organization_id": receiver_id,
        "client": {"name": lead.name, "external_ref": lead.external_ref,
                   **({"location": lead.location} if lead.location else {}),
                   **({"consent": data["consent"]} if data.get("consent") else {})},
        "skills": list(lead.skills or ()), "description": lead.description,
        "note": data.get("note") or "", "match_score": score,
        "source": {"kind": "visit", "visit_id": lead.visit_id, "lead_id": lead.id},
        "referred_by_person_id": data.get("referred_by_person_id") or lead.person_id,
    }
    # Within the unit of work that claimed the key: record_referral joins it.
    return referrals.record_referral(
        session=session, data=body, actor=actor, geocoder=geocoder,
        attribution_window_days=attribution_window_days,
        auto_reoffer_default=auto_reoffer_default, require_consent=require_consent)


def _best_firm(
    lead: Lead, actor: Principal, index: matching.IndexSource, geocoder: Geocoder,
    default_weights: Any,
) -> tuple[int, float]:
    """Return the best-ranked firm for the lead's need and place, and its score."""
    # What the lead holds decides, not the request: a 409 that says what to send instead.
    if lead.location is None:
        raise Conflict(N_("The lead was recorded without a place, so no match can rank firms "
                          "for it; name the firm (receiver_organization_id)."))
    if not lead.skills and not (lead.description or "").strip():
        raise Conflict(N_("The lead has no skills or description to match on; name the firm "
                          "(receiver_organization_id)."))
    ranking = matching.match(
        index=index, actor=actor, geocoder=geocoder, default_weights=default_weights,
        request={"location": {"latitude": lead.latitude, "longitude": lead.longitude},
                 "skills": list(lead.skills or ()), "description": lead.description,
                 "limit": 1, "referrer_organization_id": lead.organization_id})
    if not ranking.candidates:
        raise Conflict(N_("No firm fits this lead's need and place now; name the firm "
                          "(receiver_organization_id)."))
    best = ranking.candidates[0]
    return best.organization_id, best.score
