"""Target proposals in the portal: a person proposes their own, their manager agrees,
counters or declines, head office sees every open proposal; errors beside the fields."""

from __future__ import annotations

import re

from sqlalchemy import select

from models import KpiTarget, KpiTargetProposal
from referral_service.db import session_scope
from tests.portal import test_visits

# Alpha's Mia manages Sam and Pat; Bea sells for Beta.
team, sam, mia, pat, bea = (test_visits.team, test_visits.sam, test_visits.mia,
                            test_visits.pat, test_visits.bea)
MONTH = "2026-06"


def proposal_id(response) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    return int(re.search(r"/targets/(\d+)$", response.headers["Location"]).group(1))


def propose(portal, scope: str, value: str = "7", month: str = MONTH, note: str = ""):
    return portal.post("/targets", {"scope": scope, "month": month, "new_clients": value,
                                    "note": note, "propose": "1"})


def test_a_person_proposes_and_their_manager_agrees(app, sam, mia, pat, team):
    page = sam.text("/targets")
    assert f'value="person:{team.sam}"' in page and "Me (Sam Seller)" in page
    assert f'value="person:{team.pat}"' not in page
    proposal = proposal_id(propose(sam, f"person:{team.sam}", note="Busy season"))
    shown = sam.text(f"/targets/{proposal}")
    assert "Busy season" in shown and 'value="withdraw"' in shown and 'value="agree"' not in shown
    assert "Sam Seller" in mia.text("/targets")  # waiting for Mia
    assert pat.get(f"/targets/{proposal}").status_code == 404
    page = mia.text(f"/targets/{proposal}")
    assert 'value="agree"' in page and 'value="counter"' in page
    response = mia.post(f"/targets/{proposal}", {"decision": "agree", "note": "Deal"},
                        token_from=f"/targets/{proposal}")
    assert response.status_code == 302
    with session_scope(app, write=False) as session:
        target = session.get(KpiTarget, ("person", team.sam, MONTH))
        assert (target.new_clients, target.proposal_id) == (7, proposal)
    page = sam.text("/targets")
    assert "My agreed targets" in page and "mia@alpha.example" in page


def test_a_manager_counters_and_the_person_agrees_the_counter(app, sam, mia, team):
    proposal = proposal_id(propose(sam, f"person:{team.sam}", "9"))
    response = mia.post(f"/targets/{proposal}", {"decision": "counter", "new_clients": "12",
                                                 "note": "You can do more"},
                        token_from=f"/targets/{proposal}")
    counter = proposal_id(response)
    assert counter != proposal
    page = sam.text(f"/targets/{counter}")
    assert "You can do more" in page and 'value="agree"' in page
    assert sam.post(f"/targets/{counter}", {"decision": "agree"},
                    token_from=f"/targets/{counter}").status_code == 302
    history = sam.text(f"/targets/{proposal}")
    assert history.index(f"#{proposal}</a>") < history.index(f"#{counter}</a>")
    with session_scope(app, write=False) as session:
        assert session.get(KpiTarget, ("person", team.sam, MONTH)).new_clients == 12
        assert session.scalars(select(KpiTargetProposal.status).order_by(
            KpiTargetProposal.id)).all() == ["countered", "agreed"]


def test_errors_show_beside_the_fields_and_in_the_summary(app, sam, mia, team):
    response = propose(sam, f"person:{team.sam}", "-3", month="2026-13")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="error-summary"' in page and 'href="#new_clients"' in page
    assert 'id="month-error"' in page and 'id="new_clients-error"' in page
    proposal = proposal_id(propose(sam, f"person:{team.sam}"))
    twice = propose(sam, f"person:{team.sam}", "8")
    assert twice.status_code == 422 and "still open" in twice.get_data(as_text=True)
    response = mia.post(f"/targets/{proposal}", {"decision": "counter", "new_clients": ""},
                        token_from=f"/targets/{proposal}")
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="new_clients-error"' in page
    assert "Required to counter." in page
    # Declined meanwhile: the second decision is refused with the proposal's state.
    token_page = f"/targets/{proposal}"
    assert mia.post(token_page, {"decision": "decline", "note": "Later"},
                    token_from=token_page).status_code == 302
    with session_scope(app, write=False) as session:
        assert session.get(KpiTargetProposal, proposal).status == "declined"


def test_a_decision_without_the_csrf_token_is_refused(app, sam, mia, team):
    proposal = proposal_id(propose(sam, f"person:{team.sam}"))
    response = mia.client.post(f"/targets/{proposal}", data={"decision": "agree"})
    assert response.status_code in (400, 403)
    with session_scope(app, write=False) as session:
        assert session.get(KpiTargetProposal, proposal).status == "proposed"


def test_head_office_sees_every_open_proposal_and_agrees_a_firms(
        app, admin, partner, sam, bea, team, network):
    propose(sam, f"person:{team.sam}")
    firm = proposal_id(propose(partner, f"organization:{network.alpha}", "30"))
    propose(bea, f"person:{team.bea}")
    page = admin.text("/targets")
    assert page.count('class="status status-target-proposed"') >= 3
    assert "Bea Beta" not in sam.text("/targets")
    response = admin.post(f"/targets/{firm}", {"decision": "agree"},
                          token_from=f"/targets/{firm}")
    assert response.status_code == 302
    with session_scope(app, write=False) as session:
        assert session.get(KpiTarget, ("organization", network.alpha, MONTH)).new_clients == 30
    assert ("portal.target_list" in admin.text("/targets")
            or 'href="/targets"' in admin.text("/targets"))
