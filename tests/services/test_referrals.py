"""Referrals as use cases: attribution, capacity, lifecycle, history, expiry, visibility."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from models import (
    AuditEntry,
    Client,
    OrganizationStats,
    OutboxEvent,
    Referral,
    ReferralEvent,
    utcnow,
)
from referral_service.schemas.referrals import ReferralSchema
from referral_service.services import clients, organizations, referrals
from referral_service.services.auth import SYSTEM, Principal
from referral_service.services.errors import (
    Conflict,
    Forbidden,
    InvalidTransition,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)

WINDOW = 365
STAFF = Principal(name="key:crm", role="crm", api_key_id=None)


@pytest.fixture
def geocoder(app):
    return app.extensions["geocoder"]


@pytest.fixture
def make_firm(session, geocoder):
    def factory(name: str = "Firm", **extra) -> int:
        data = {"name": name, "kind": "partner", "skills": ["cnc machining"],
                "description": "", "offices": [{"latitude": 22.6, "longitude": 120.3}],
                "capacity": None, "active": True, **extra}
        return organizations.create(session=session, data=data, actor=SYSTEM,
                                    geocoder=geocoder).id

    return factory


@pytest.fixture
def refer(session, geocoder):
    def factory(referrer: int, receiver: int, client: str = "Acme Ltd", *,
                actor: Principal = STAFF, external_ref: str | None = None,
                location: dict | None = None, **extra):
        data = {"referrer_organization_id": referrer, "receiver_organization_id": receiver,
                "client": {"name": client, "external_ref": external_ref,
                           "location": location}, **extra}
        return referrals.record_referral(session=session, data=data, actor=actor,
                                         geocoder=geocoder,
                                         attribution_window_days=WINDOW).referral

    return factory


def partner(organization_id: int) -> Principal:
    return Principal(name=f"key:partner{organization_id}", role="partner",
                     organization_id=organization_id)


def stats(session, organization_id: int) -> tuple[int, int, int]:
    row = session.execute(
        select(OrganizationStats.open_referrals, OrganizationStats.won, OrganizationStats.failed)
        .where(OrganizationStats.organization_id == organization_id)
        .execution_options(populate_existing=True)
    ).one()
    return tuple(row)


@pytest.mark.parametrize(("left", "right"), [
    ("Acme Ltd", "ACME"),
    ("acme, inc.", "Acme Incorporated"),
    ("Acme Co., Ltd.", "acme"),
    ("A.B.C. Corp", "ABC"),
    ("Acme-Tech GmbH", "Acme Tech"),
    ("台灣積體電路製造股份有限公司", "台灣積體電路製造"),
    ("株式会社トヨタ", "トヨタ"),
])
def test_name_spellings_of_one_client_normalize_alike(left, right):
    assert clients.normalize_name(left) == clients.normalize_name(right)


def test_different_names_stay_different_and_a_bare_suffix_is_kept():
    assert clients.normalize_name("Acme") != clients.normalize_name("Apex")
    assert clients.normalize_name("Co") == "co"


def test_client_is_found_by_external_ref_then_by_name(session):
    def same(name, external_ref=None):
        return clients.find_or_create(session=session, name=name, external_ref=external_ref)

    first, created = same("Acme Ltd")
    assert created
    assert same("ACME") == (first, False)
    # A CRM id given later is recorded on the name-only client.
    recorded, created = same("Acme", "C-1")
    assert (recorded.id, recorded.external_ref, created) == (first.id, "C-1", False)
    assert same("acme co.", "C-1") == (recorded, False)
    # Same name, another CRM id: another client; then found by that id whatever the name.
    other, created = same("Acme", "C-2")
    assert created and other.id != first.id
    assert same("Renamed", "C-2") == (other, False)
    session.commit()
    assert session.scalar(select(func.count()).select_from(Client)) == 2


def test_a_name_without_letters_is_refused(session):
    with pytest.raises(ValidationFailed):
        clients.find_or_create(session=session, name="...")


def test_record_referral_starts_pending_with_history_stats_audit_and_event(
    session, make_firm, refer
):
    a, b = make_firm("A"), make_firm("B")
    before = session.get(OrganizationStats, b).updated_at
    referral = refer(a, b, skills=["CNC Machining", "cnc-machining"], match_score=0.7)
    assert referral.status == "pending" and referral.version == 1
    assert referral.skills == ["cnc-machining"]
    assert [(e.status, e.actor) for e in referral.history] == [("pending", "key:crm")]
    assert stats(session, b) == (1, 0, 0)
    assert session.get(OrganizationStats, b, populate_existing=True).updated_at > before
    audit = session.scalars(select(AuditEntry).where(AuditEntry.object_type == "referral")).all()
    assert [entry.action for entry in audit] == ["referral.create"]
    event = session.scalars(select(OutboxEvent).where(OutboxEvent.type.like("referral.%"))).one()
    assert event.type == "referral.created"
    assert event.payload == ReferralSchema().dump(referral)
    assert [step["status"] for step in event.payload["history"]] == ["pending"]


def test_the_recorded_referral_is_the_sessions_object_as_read_back(session, geocoder, make_firm):
    """Built from the rows written (no read back), the referral, its client and its first
    history entry are the session's objects, clean, and the body is their schema dump."""
    a, b = make_firm("A"), make_firm("B")
    recorded = referrals.record_referral(
        session=session, actor=STAFF, geocoder=geocoder, attribution_window_days=WINDOW,
        data={"referrer_organization_id": a, "receiver_organization_id": b,
              "client": {"name": "Acme", "external_ref": "C-9"}, "skills": ["Anodizing"]})
    referral = recorded.referral
    assert recorded.body == ReferralSchema().dump(referral)
    assert not session.new and not session.dirty
    assert session.get(Referral, recorded.id) is referral
    assert session.get(Client, referral.client_id) is referral.client
    assert session.get(ReferralEvent, referral.history[0].id) is referral.history[0]
    assert clients.find(session=session, name="ACME", external_ref="c-9") is referral.client


def test_second_referral_of_an_attributed_client_is_refused_with_the_holder(
    session, make_firm, refer
):
    a, b, c = make_firm("A"), make_firm("B"), make_firm("C")
    first = refer(a, b, "Acme Ltd")
    with pytest.raises(Conflict) as refused:
        refer(c, b, "ACME Co.")
    assert refused.value.extra["existing_referral_id"] == first.id
    assert session.scalar(select(func.count()).select_from(Referral)) == 1
    assert stats(session, b) == (1, 0, 0)


def test_a_declined_client_can_be_referred_again(session, make_firm, refer):
    a, b, c = make_firm("A"), make_firm("B"), make_firm("C")
    first = refer(a, b)
    referrals.move_referral(session=session, referral_id=first.id, status="declined",
                            reason="not our field", actor=STAFF)
    assert refer(a, c).status == "pending"


def test_a_converted_client_is_locked_for_the_window_then_free(session, make_firm, refer):
    a, b, c = make_firm("A"), make_firm("B"), make_firm("C")
    first = refer(a, b)
    for status in ("accepted", "converted"):
        referrals.move_referral(session=session, referral_id=first.id, status=status,
                                reason=None, actor=STAFF)
    with pytest.raises(Conflict) as refused:
        refer(c, b)
    assert refused.value.extra["existing_referral_id"] == first.id
    session.execute(update(Referral).where(Referral.id == first.id)
                    .values(converted_at=utcnow() - timedelta(days=WINDOW + 1)))
    session.commit()
    assert refer(c, b).status == "pending"


def test_receiver_at_capacity_is_refused_until_a_referral_closes(session, make_firm, refer):
    a, b = make_firm("A"), make_firm("B", capacity=1)
    first = refer(a, b, "First Client")
    with pytest.raises(Conflict, match="at capacity"):
        refer(a, b, "Second Client")
    assert session.scalar(select(func.count()).select_from(Client)) == 1
    referrals.move_referral(session=session, referral_id=first.id, status="withdrawn",
                            reason=None, actor=STAFF)
    assert refer(a, b, "Second Client").status == "pending"


def test_referral_to_self_unknown_or_inactive_firm_is_422(session, make_firm, refer):
    a, b = make_firm("A"), make_firm("B", active=False)
    for receiver, field in ((a, "receiver_organization_id"), (b, "receiver_organization_id"),
                            (9999, "receiver_organization_id")):
        with pytest.raises(ValidationFailed) as refused:
            refer(a, receiver)
        assert field in refused.value.errors
    with pytest.raises(ValidationFailed) as refused:
        refer(9999, a)
    assert "referrer_organization_id" in refused.value.errors
    assert session.scalar(select(func.count()).select_from(Referral)) == 0


def test_a_partner_refers_only_as_itself(make_firm, refer):
    a, b, c = make_firm("A"), make_firm("B"), make_firm("C")
    with pytest.raises(Forbidden):
        refer(a, b, actor=partner(c))
    assert refer(c, b, actor=partner(c)).status == "pending"


def test_only_the_lifecycles_moves_are_allowed(session, make_firm, refer):
    a, b = make_firm("A"), make_firm("B")
    allowed = {"pending": {"accepted", "declined", "withdrawn", "expired"},
               "accepted": {"converted", "lost"}}
    paths = {"pending": [], "accepted": ["accepted"], "declined": ["declined"],
             "withdrawn": ["withdrawn"], "expired": ["expired"],
             "converted": ["accepted", "converted"], "lost": ["accepted", "lost"]}
    for start, path in paths.items():
        referral = refer(a, b, f"Client {start}")
        for step in path:
            moved = referrals.move_referral(session=session, referral_id=referral.id,
                                            status=step, reason=None, actor=STAFF)
            assert moved.status == step and getattr(moved, f"{step}_at") is not None
        for target in set(paths) - allowed.get(start, set()):
            # converted -> lost is head office's reversal (SPEC section 10): the CRM's key
            # may not make it (tests/api/test_referral_reversal.py).
            refused = Forbidden if (start, target) == ("converted", "lost") else (
                InvalidTransition)
            with pytest.raises(refused):
                referrals.move_referral(session=session, referral_id=referral.id,
                                        status=target, reason=None, actor=STAFF)
        assert session.get(Referral, referral.id, populate_existing=True).status == start
        if start in allowed:  # close it, so that the next client finds room
            referrals.move_referral(session=session, referral_id=referral.id, status="lost"
                                    if start == "accepted" else "withdrawn", reason=None,
                                    actor=STAFF)


def test_roles_receiver_answers_referrer_withdraws(session, make_firm, refer):
    a, b, c = make_firm("A"), make_firm("B"), make_firm("C")
    referral = refer(a, b)
    receiver, referrer, stranger = partner(b), partner(a), partner(c)
    assert referrals.allowed_moves(referral, receiver) == ["accepted", "declined"]
    assert referrals.allowed_moves(referral, referrer) == ["withdrawn"]
    assert referrals.allowed_moves(referral, STAFF) == ["accepted", "declined", "withdrawn",
                                                       "expired"]
    with pytest.raises(Forbidden):
        referrals.move_referral(session=session, referral_id=referral.id, status="accepted",
                                reason=None, actor=referrer)
    with pytest.raises(Forbidden):
        referrals.move_referral(session=session, referral_id=referral.id, status="withdrawn",
                                reason=None, actor=receiver)
    with pytest.raises(NotFound):
        referrals.move_referral(session=session, referral_id=referral.id, status="accepted",
                                reason=None, actor=stranger)
    accepted = referrals.move_referral(session=session, referral_id=referral.id,
                                       status="accepted", reason=None, actor=receiver)
    assert referrals.allowed_moves(accepted, receiver) == ["converted", "lost"]
    assert referrals.allowed_moves(accepted, referrer) == []
    converted = referrals.move_referral(session=session, referral_id=referral.id,
                                        status="converted", reason="signed", actor=receiver)
    assert [(e.status, e.actor, e.reason) for e in converted.history] == [
        ("pending", "key:crm", None), ("accepted", "key:partner2", None),
        ("converted", "key:partner2", "signed")]


def test_stale_expected_version_is_refused(session, make_firm, refer):
    a, b = make_firm("A"), make_firm("B")
    referral = refer(a, b)
    referrals.move_referral(session=session, referral_id=referral.id, status="accepted",
                            reason=None, actor=STAFF, expected_version=1)
    with pytest.raises(PreconditionFailed):
        referrals.move_referral(session=session, referral_id=referral.id, status="lost",
                                reason=None, actor=STAFF, expected_version=1)
    assert session.get(Referral, referral.id).status == "accepted"


def test_moves_keep_the_receivers_counts(session, make_firm, refer):
    a, b = make_firm("A"), make_firm("B")
    outcomes = {"Won Co": ["accepted", "converted"], "Lost Co": ["accepted", "lost"],
                "Declined Co": ["declined"], "Withdrawn Co": ["withdrawn"], "Open Co": [],
                "Accepted Co": ["accepted"]}
    for name, path in outcomes.items():
        referral = refer(a, b, name)
        for status in path:
            referrals.move_referral(session=session, referral_id=referral.id, status=status,
                                    reason=None, actor=STAFF)
    # open: pending + accepted; won: converted; failed: lost + declined (withdrawn: neither)
    assert stats(session, b) == (2, 1, 2)
    assert stats(session, a) == (0, 0, 0)


def test_expire_pending_moves_only_old_pending_referrals(session, make_firm, refer):
    a, b = make_firm("A"), make_firm("B")
    old, recent, accepted = refer(a, b, "Old Co"), refer(a, b, "Recent Co"), refer(
        a, b, "Accepted Co")
    referrals.move_referral(session=session, referral_id=accepted.id, status="accepted",
                            reason=None, actor=STAFF)
    session.execute(update(Referral).where(Referral.id.in_((old.id, accepted.id)))
                    .values(created_at=utcnow() - timedelta(days=15)))
    session.commit()
    assert referrals.expire_pending(session=session, older_than_days=14) == 1
    assert referrals.expire_pending(session=session, older_than_days=14) == 0
    statuses = dict(session.execute(select(Referral.id, Referral.status)).all())
    assert statuses == {old.id: "expired", recent.id: "pending", accepted.id: "accepted"}
    last = session.scalars(select(ReferralEvent).where(ReferralEvent.referral_id == old.id)
                           .order_by(ReferralEvent.id.desc())).first()
    assert (last.status, last.actor) == ("expired", "system")
    assert stats(session, b) == (2, 0, 1)


def test_partner_sees_and_lists_only_its_own_referrals(session, make_firm, refer):
    a, b, c = make_firm("A"), make_firm("B"), make_firm("C")
    ab, ca, cb = refer(a, b, "One"), refer(c, a, "Two"), refer(c, b, "Three")
    items, total = referrals.list_(session=session, actor=partner(a), page=1, page_size=50)
    assert total == 2 and {r.id for r in items} == {ab.id, ca.id}
    items, _ = referrals.list_(session=session, actor=partner(a), page=1, page_size=50,
                               role="receiver")
    assert [r.id for r in items] == [ca.id]
    assert referrals.list_(session=session, actor=partner(a), page=1, page_size=50,
                           organization_id=c) == ([], 0)
    with pytest.raises(NotFound):
        referrals.get(session=session, referral_id=cb.id, actor=partner(a))
    items, total = referrals.list_(session=session, actor=STAFF, page=1, page_size=2)
    assert total == 3 and [r.id for r in items] == [cb.id, ca.id]
    # A role names the side of organization_id; without one it narrows nothing.
    assert referrals.list_(session=session, actor=STAFF, page=1, page_size=50,
                           role="referrer")[1] == 3


def test_a_crm_id_is_compared_trimmed_and_case_folded_and_kept_as_sent(session):
    first, created = clients.find_or_create(session=session, name="Acme", external_ref=" CRM-400 ")
    assert created and first.external_ref == "CRM-400"
    same, created = clients.find_or_create(session=session, name="Other", external_ref="crm-400")
    assert (same.id, created, same.external_ref) == (first.id, False, "CRM-400")
    session.commit()


def test_the_clients_place_is_kept_as_given(session, make_firm, refer):
    a, b = make_firm("A"), make_firm("B")
    referral = refer(a, b, "Placed Co", location={"city": "Tainan", "country": "tw"})
    client = session.get(Client, referral.client_id, populate_existing=True)
    assert (client.city, client.country, client.address) == ("Tainan", "TW", None)
    assert client.location["city"] == "Tainan" and client.location["latitude"] is not None


def test_attribution_is_judged_before_the_receivers_capacity(session, make_firm, refer):
    a, b, c = make_firm("A"), make_firm("B", capacity=1), make_firm("C")
    first = refer(a, b, "Acme Ltd")
    with pytest.raises(Conflict) as refused:
        refer(c, b, "ACME")
    assert refused.value.extra["existing_referral_id"] == first.id


def test_the_returned_referral_is_the_one_a_read_gives(session, make_firm, refer):
    a, b = make_firm("A"), make_firm("B")
    referral = refer(a, b, "Read Back Ltd")
    session.expunge_all()
    read = session.get(Referral, referral.id)
    assert ReferralSchema().dump(read) == ReferralSchema().dump(referral)


def test_the_compiled_dump_is_the_schemas(session, make_firm, refer):
    """schemas.referrals.dump_referral (the events' payload, POST's body) gives exactly
    ReferralSchema().dump: a placed client, empty values, several history steps, a dict."""
    from marshmallow import Schema, fields, post_dump

    from referral_service.schemas.compiled import compile_dump
    from referral_service.schemas.referrals import dump_referral

    a, b = make_firm("A"), make_firm("B")
    placed = refer(a, b, "Placed Co", location={"city": "Tainan", "country": "tw"},
                   external_ref="P-1", skills=["Anodizing", "CNC"], note="n", match_score=1)
    plain = refer(a, b, "Plain Co", match_score=None)
    referrals.move_referral(session=session, referral_id=plain.id, status="accepted",
                            reason=None, actor=STAFF)
    referrals.move_referral(session=session, referral_id=plain.id, status="converted",
                            reason="Signed", actor=STAFF)
    session.expunge_all()
    schema = ReferralSchema()
    for referral in (placed, plain, session.get(Referral, plain.id)):
        assert dump_referral(referral) == schema.dump(referral)
        as_dict = {name: getattr(referral, name) for name in schema.fields}
        as_dict["client"] = {"id": 1, "name": "By key", "location": None, "items": 2}
        assert dump_referral(as_dict) == schema.dump(as_dict)
    assert len(dump_referral(plain)["history"]) == 3

    class Hooked(Schema):
        at = fields.DateTime()

        @post_dump
        def mark(self, data, **_kwargs):
            return {**data, "hooked": True}

    # A hook (or a field type) it does not reproduce: the schema dumps.
    assert compile_dump(Hooked()).__self__.__class__ is Hooked
