"""Target proposals as use cases: who is which side for a person, a department and a firm;
who sees what; what agreeing writes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from models import KpiTarget, KpiTargetProposal
from referral_service.db import new_session
from referral_service.services import people, targets
from referral_service.services.auth import SYSTEM, Principal
from referral_service.services.errors import Conflict, Forbidden, NotFound, ValidationFailed

MONTH = "2026-05"


@pytest.fixture
def write(app):
    """A write session, as a request has."""
    db_session = new_session(app, write=True)
    yield db_session
    db_session.close()


@dataclass
class Firm:
    """Harbor: Bo manages Mia, who heads Sales and manages Sam and Pat."""

    id: int
    bo: int
    mia: int
    sam: int
    pat: int
    sales: int

    def user(self, person_id: int) -> Principal:
        return Principal(name=f"user:{person_id}", role="partner", organization_id=self.id,
                         person_id=person_id)


@pytest.fixture
def firm(write, make_org) -> Firm:
    organization = make_org(name="Harbor Works")["id"]

    def add(name: str, **extra) -> int:
        return people.create_person(session=write, actor=SYSTEM, data={
            "organization_id": organization, "name": name, **extra}).person.id

    bo = add("Bo Boss")
    mia = add("Mia Manager", manager_id=bo)
    sam, pat = add("Sam Seller", manager_id=mia), add("Pat Peer", manager_id=mia)
    sales = people.create_department(session=write, actor=SYSTEM, data={
        "organization_id": organization, "name": "Sales", "head_person_id": mia}).id
    return Firm(organization, bo, mia, sam, pat, sales)


def propose(write, actor: Principal, scope: str, scope_id: int, new_clients: int = 5):
    return targets.propose(session=write, actor=actor, data={
        "scope": scope, "scope_id": scope_id, "month": MONTH, "new_clients": new_clients,
        "note": ""}).proposal


def test_a_person_and_their_manager_agree_the_persons_target(write, firm):
    proposal = propose(write, firm.user(firm.sam), "person", firm.sam, 6)
    assert (proposal.side, proposal.proposed_by_person_id) == ("holder", firm.sam)
    # Pat does not see Sam's targets; Bo sees them (Sam reports to him through Mia) but is
    # not Sam's manager; Sam cannot agree his own.
    for outsider, refusal in ((firm.pat, NotFound), (firm.bo, Forbidden),
                              (firm.sam, Forbidden)):
        with pytest.raises(refusal):
            targets.decide(session=write, proposal_id=proposal.id, decision="agree",
                           actor=firm.user(outsider))
    view = targets.decide(session=write, proposal_id=proposal.id, decision="agree",
                          note="deal", actor=firm.user(firm.mia))
    assert view.proposal.status == "agreed" and view.proposal.decided_by == f"user:{firm.mia}"
    target = write.get(KpiTarget, ("person", firm.sam, MONTH))
    assert (target.new_clients, target.organization_id, target.proposal_id) == (
        6, firm.id, proposal.id)


def test_a_department_head_and_the_heads_manager_agree_the_departments_target(write, firm):
    proposal = propose(write, firm.user(firm.mia), "department", firm.sales, 20)
    assert proposal.side == "holder"
    with pytest.raises(NotFound):  # Sam's view stops at his own work
        targets.counter(session=write, proposal_id=proposal.id, new_clients=30,
                        actor=firm.user(firm.sam))
    countered = targets.counter(session=write, proposal_id=proposal.id, new_clients=25,
                                note="more", actor=firm.user(firm.bo))
    assert (countered.proposal.side, countered.proposal.counter_of_id) == (
        "counterpart", proposal.id)
    with pytest.raises(Forbidden):  # Bo cannot agree his own counter
        targets.decide(session=write, proposal_id=countered.proposal.id, decision="agree",
                       actor=firm.user(firm.bo))
    targets.decide(session=write, proposal_id=countered.proposal.id, decision="agree",
                   actor=firm.user(firm.mia))
    assert write.get(KpiTarget, ("department", firm.sales, MONTH)).new_clients == 25
    history = targets.get(session=write, proposal_id=proposal.id, actor=SYSTEM).history
    assert [(p.side, p.new_clients, p.status) for p in history] == [
        ("holder", 20, "countered"), ("counterpart", 25, "agreed")]


def test_head_office_acts_as_any_counterpart_and_the_firm_as_its_own_holder(write, firm):
    firm_key = Principal(name="key:harbor", role="partner", organization_id=firm.id)
    crm = Principal(name="key:crm", role="crm")
    proposal = propose(write, firm_key, "organization", firm.id, 40)
    assert proposal.side == "holder"
    with pytest.raises(Forbidden):  # a firm's key speaks for no person
        propose(write, firm_key, "person", firm.sam)
    by_head_office = propose(write, crm, "person", firm.sam)
    assert by_head_office.side == "counterpart"
    assert [p.id for p in targets.open_for_counterpart(session=write, actor=crm)] == [
        proposal.id]
    assert [p.id for p in targets.open_for_counterpart(
        session=write, actor=firm.user(firm.sam))] == [by_head_office.id]
    targets.decide(session=write, proposal_id=proposal.id, decision="agree", actor=crm)
    assert write.get(KpiTarget, ("organization", firm.id, MONTH)).agreed_by == "key:crm"


def test_a_person_sees_their_own_and_their_peoples_proposals_only(write, firm):
    sams = propose(write, firm.user(firm.sam), "person", firm.sam)
    pats = propose(write, firm.user(firm.pat), "person", firm.pat)
    sales = propose(write, firm.user(firm.mia), "department", firm.sales)
    with pytest.raises(NotFound):
        targets.get(session=write, proposal_id=pats.id, actor=firm.user(firm.sam))
    with pytest.raises(NotFound):  # nor act on them
        targets.decide(session=write, proposal_id=pats.id, decision="withdraw",
                       actor=firm.user(firm.sam))

    def listed(person_id: int) -> set[int]:
        items, _ = targets.list_(session=write, actor=firm.user(person_id), page=1,
                                 page_size=50)
        return {p.id for p in items}

    assert listed(firm.sam) == {sams.id}
    assert listed(firm.mia) == {sams.id, pats.id, sales.id}
    assert listed(firm.bo) == {sams.id, pats.id, sales.id}
    assert [p.id for p in targets.open_for_counterpart(
        session=write, actor=firm.user(firm.mia))] == [sams.id, pats.id]
    assert [p.id for p in targets.open_for_counterpart(
        session=write, actor=firm.user(firm.bo))] == [sales.id]


def test_refusals_leave_nothing_behind(write, session, firm, make_org):
    other = make_org(name="Coast Works")["id"]
    sam = firm.user(firm.sam)
    with pytest.raises(ValidationFailed) as missing:
        propose(write, sam, "organization", other)
    assert set(missing.value.errors) == {"scope_id"}
    with pytest.raises(ValidationFailed) as negative:
        propose(write, sam, "person", firm.sam, -1)
    assert set(negative.value.errors) == {"new_clients"}
    first = propose(write, sam, "person", firm.sam)
    with pytest.raises(Conflict) as twice:
        propose(write, firm.user(firm.mia), "person", firm.sam)
    assert twice.value.extra["open_proposal_id"] == first.id
    targets.decide(session=write, proposal_id=first.id, decision="withdraw", actor=sam)
    with pytest.raises(Conflict) as closed:
        targets.decide(session=write, proposal_id=first.id, decision="agree",
                       actor=firm.user(firm.mia))
    assert closed.value.extra["current_status"] == "withdrawn"
    session.rollback()
    assert session.scalars(select(KpiTargetProposal.status)).all() == ["withdrawn"]
    assert session.scalars(select(KpiTarget)).all() == []


def test_agreed_targets_of_a_scope_latest_month_first(write, firm):
    for month, value in (("2026-04", 3), ("2026-05", 4)):
        proposal = targets.propose(session=write, actor=firm.user(firm.sam), data={
            "scope": "person", "scope_id": firm.sam, "month": month, "new_clients": value})
        targets.decide(session=write, proposal_id=proposal.proposal.id, decision="agree",
                       actor=firm.user(firm.mia))
    found = targets.agreed_targets(session=write, actor=firm.user(firm.sam), scope="person",
                                   scope_id=firm.sam)
    assert [(t.month, t.new_clients) for t in found] == [("2026-05", 4), ("2026-04", 3)]
    with pytest.raises(NotFound):
        targets.agreed_targets(session=write, actor=firm.user(firm.pat), scope="person",
                               scope_id=firm.sam)
