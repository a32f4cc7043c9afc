"""Head office's skills page (SPEC section 8): aliases added and removed, two skills merged
after a confirmation step; and the match form's least skill fit."""

from __future__ import annotations

import re

from tests.portal.conftest import csrf_token

NAMES = re.compile(r'<strong class="name">([^<]+)</strong>')


def test_head_office_adds_and_removes_another_name_of_a_skill(admin, network):
    page = admin.text("/skills")
    assert "cnc-machining" in page and "Skills and their other names" in page
    added = admin.client.post("/skills/aliases", data={
        "alias-alias": "CNC milling", "alias-skill": "cnc-machining",
        "alias-csrf_token": csrf_token(page)}, follow_redirects=True)
    text = added.get_data(as_text=True)
    assert added.status_code == 200
    assert "“cnc-milling” now stands for cnc-machining." in text
    row = text.split('<td class="title">cnc-machining</td>')[1].split("</tr>")[0]
    assert "cnc-milling" in row

    # a match naming the other name finds the firm with the skill, named as asked
    match_page = admin.text("/match")
    ranked = admin.client.post("/match", data={
        "skills": "cnc milling", "city": "Kaohsiung", "country": "TW", "limit": "5",
        "kinds": ["partner", "affiliate"], "csrf_token": csrf_token(match_page)})
    assert NAMES.findall(ranked.get_data(as_text=True)) == ["Alpha Machining"]

    removed = admin.client.post("/skills/aliases/remove", data={
        "alias": "cnc-milling", "csrf_token": csrf_token(admin.text("/skills"))},
        follow_redirects=True)
    assert "“cnc-milling” is no longer another name of a skill." in removed.get_data(
        as_text=True)


def test_a_refused_name_is_shown_beside_its_field_and_what_was_typed_stays(admin, network):
    page = admin.text("/skills")
    response = admin.client.post("/skills/aliases", data={
        "alias-alias": "Powder coating", "alias-skill": "anodizing",
        "alias-csrf_token": csrf_token(page)})
    text = response.get_data(as_text=True)
    assert response.status_code == 409
    assert 'id="alias-alias-error"' in text and "merge it instead" in text
    assert 'value="Powder coating"' in text
    unknown = admin.client.post("/skills/aliases", data={
        "alias-alias": "tig", "alias-skill": "welding", "alias-csrf_token": csrf_token(page)})
    assert unknown.status_code == 404
    assert 'id="alias-skill-error"' in unknown.get_data(as_text=True)


def test_a_merge_asks_for_confirmation_then_changes_every_firms_tags(app, admin, network):
    page = admin.text("/skills")
    data = {"merge-source": "Powder coating", "merge-target": "anodizing",
            "merge-csrf_token": csrf_token(page)}
    first = admin.client.post("/skills/merge", data=data)
    text = first.get_data(as_text=True)
    assert first.status_code == 200
    assert "Confirm: merge Powder coating into anodizing?" in text
    assert 'name="merge-confirming"' in text
    assert "<td class=\"title\">powder-coating</td>" in text  # nothing changed yet

    unticked = admin.client.post("/skills/merge", data={**data, "merge-confirming": "1"})
    assert unticked.status_code == 422
    assert "Tick the box to confirm." in unticked.get_data(as_text=True)

    done = admin.client.post("/skills/merge", data={**data, "merge-confirming": "1",
                                                    "merge-confirm": "y"},
                             follow_redirects=True)
    text = done.get_data(as_text=True)
    assert "powder-coating was merged into anodizing: 1 firm&#39;s tags changed." in text
    assert '<td class="title">powder-coating</td>' not in text
    from referral_service.db import session_scope
    from referral_service.services import organizations
    from referral_service.services.auth import SYSTEM

    with session_scope(app, write=False) as session:
        beta = organizations.get(session=session, organization_id=network.beta, actor=SYSTEM)
        assert beta.skills == ["anodizing"]


def test_merging_a_skill_into_itself_or_an_unknown_one_is_refused_beside_the_field(admin,
                                                                                  network):
    page = admin.text("/skills")
    base = {"merge-confirming": "1", "merge-confirm": "y", "merge-csrf_token": csrf_token(page)}
    itself = admin.client.post("/skills/merge", data={**base, "merge-source": "Anodizing",
                                                      "merge-target": "anodizing"})
    assert itself.status_code == 422
    assert 'id="merge-target-error"' in itself.get_data(as_text=True)
    unknown = admin.client.post("/skills/merge", data={**base, "merge-source": "welding",
                                                       "merge-target": "anodizing"})
    assert unknown.status_code == 404
    assert 'id="merge-source-error"' in unknown.get_data(as_text=True)


def test_a_partner_cannot_open_the_skills_page_nor_post_to_it(partner):
    assert partner.get("/skills").status_code == 403
    token = csrf_token(partner.text("/dashboard"))
    response = partner.client.post("/skills/merge", data={
        "merge-source": "Powder coating", "merge-target": "anodizing", "merge-confirm": "y",
        "merge-confirming": "1", "merge-csrf_token": token})
    assert response.status_code == 403


def test_the_match_form_passes_its_least_skill_fit(admin, network):
    page = admin.text("/match")
    data = {"skills": "", "description": "plastic injection moulding", "city": "Tainan",
            "country": "TW", "limit": "5", "kinds": ["partner", "affiliate"],
            "csrf_token": csrf_token(page)}
    usual = NAMES.findall(admin.client.post("/match", data=data).get_data(as_text=True))
    assert usual == ["Gamma Plastics"]
    everyone = admin.client.post("/match", data={**data, "min_skill_fit": "0"})
    assert len(NAMES.findall(everyone.get_data(as_text=True))) == 3
    too_high = admin.client.post("/match", data={**data, "min_skill_fit": "90"})
    assert too_high.status_code == 422
    assert 'id="min_skill_fit-error"' in too_high.get_data(as_text=True)
