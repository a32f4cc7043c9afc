"""Head office pages: organizations, the match form and the KPI month view."""

from __future__ import annotations

import csv
import io
import re

from openpyxl import load_workbook

from models import utcnow
from tests.portal.conftest import KAOHSIUNG, NEAR_TAINAN, add_org, csrf_token

MONTH = utcnow().strftime("%Y-%m")


def test_organizations_are_searchable_filtered_and_paged(app, admin, network):
    for number in range(21):
        add_org(app, f"Delta {number:02d} Works", KAOHSIUNG, skills=["Welding"])
    first = admin.text("/organizations")
    assert "Page 1 of 2" in first and "24 in all" in first
    assert "Page 2 of 2" in admin.text("/organizations?page=2")
    found = admin.text("/organizations?q=beta")
    assert "Beta Finishing" in found and "Alpha Machining" not in found
    assert 'value="beta"' in found  # the search stays in the box
    affiliates = admin.text("/organizations?kind=affiliate")
    assert "Gamma Plastics" in affiliates and "Beta Finishing" not in affiliates
    welders = admin.text("/organizations?skill=welding")
    assert "Delta 00 Works" in welders and "Gamma Plastics" not in welders
    assert "Beta Finishing" in admin.text(f"/organizations/{network.beta}")


def test_the_match_form_ranks_firms_with_their_reasons(admin, network):
    page = admin.text("/match")
    data = {"skills": "Anodizing", "description": "", "city": "Tainan", "country": "TW",
            "address": "", "latitude": "", "longitude": "", "limit": "5",
            "max_distance_km": "", "kinds": ["partner", "affiliate"],
            "csrf_token": csrf_token(page)}
    response = admin.client.post("/match", data=data)
    result = response.get_data(as_text=True)
    assert response.status_code == 200
    names = re.findall(r'<strong class="name">([^<]+)</strong>', result)
    # Gamma Plastics moulds plastics: no relation to anodizing, so below the relevance floor
    assert names == ["Beta Finishing", "Alpha Machining"]
    assert "Lacks anodizing." not in result.split("Alpha Machining")[0]
    assert "Served from an office" in result.split("Alpha Machining")[0]
    assert "<meter" in result
    only_affiliates = admin.client.post("/match", data={**data, "kinds": ["affiliate"]})
    page = only_affiliates.get_data(as_text=True)
    assert re.findall(r'<strong class="name">([^<]+)</strong>', page) == []
    assert "No active firm with free capacity fits this need" in page
    plastics = admin.client.post("/match", data={**data, "skills": "", "kinds": ["affiliate"],
                                                 "description": "plastic injection moulding"})
    assert re.findall(r'<strong class="name">([^<]+)</strong>',
                      plastics.get_data(as_text=True)) == ["Gamma Plastics"]


def test_the_match_form_rejects_bad_numbers_beside_the_field(admin):
    page = admin.text("/match")
    response = admin.client.post("/match", data={
        "skills": "Anodizing", "city": "Tainan", "country": "TW", "limit": "500",
        "csrf_token": csrf_token(page)})
    assert response.status_code == 422
    assert 'id="limit-error"' in response.get_data(as_text=True)


def kpi_with_activity(app, network, refer_to):
    """One converted referral this month: Beta referred to Alpha, Alpha won it."""
    from referral_service.db import session_scope
    from referral_service.services import kpi, referrals
    from referral_service.services.auth import SYSTEM

    referral = refer_to(network.beta, network.alpha)
    with session_scope(app) as session:
        for status in ("accepted", "converted"):
            referrals.move_referral(session=session, referral_id=referral, status=status,
                                    reason=None, actor=SYSTEM)
        kpi.set_target(session=session, organization_id=network.alpha, month=MONTH,
                       new_clients=4, actor=SYSTEM)


def test_the_kpi_month_shows_rows_targets_and_attainment(app, admin, network, refer_to):
    kpi_with_activity(app, network, refer_to)
    page = admin.text(f"/kpi?month={MONTH}")
    alpha_row = page[page.index("Alpha Machining"):].split("</tr>")[0]
    assert re.search(r'name="targets-\d+-new_clients"[^>]*value="4"', alpha_row)
    assert ">25%<" in alpha_row
    assert "Beta Finishing" in page
    assert f"/kpi/chart.png?month={MONTH}" in page
    assert f"/kpi/export?month={MONTH}&amp;format=csv" in page


def test_targets_are_edited_in_the_table(app, admin, network, refer_to):
    kpi_with_activity(app, network, refer_to)
    page = admin.text(f"/kpi?month={MONTH}")
    fields = dict(re.findall(r'name="(targets-\d+-(?:organization_id|new_clients))"[^>]*?'
                             r'value="([^"]*)"', page))
    beta_key = next(k.replace("organization_id", "new_clients") for k, v in fields.items()
                    if k.endswith("organization_id") and v == str(network.beta))
    fields[beta_key] = "2"
    response = admin.client.post("/kpi/targets", data={
        **fields, "month": MONTH, "csrf_token": csrf_token(page)})
    assert response.status_code == 302
    after = admin.text(response.headers["Location"])
    assert "1 target saved for" in after
    beta_row = after[after.index("Beta Finishing"):].split("</tr>")[0]
    assert ">50%<" in beta_row  # one credit (as referrer) against 2


def test_a_bad_target_is_shown_beside_it_and_nothing_is_saved(app, admin, network, refer_to):
    kpi_with_activity(app, network, refer_to)
    page = admin.text(f"/kpi?month={MONTH}")
    fields = dict(re.findall(r'name="(targets-\d+-(?:organization_id|new_clients))"[^>]*?'
                             r'value="([^"]*)"', page))
    keys = sorted(k for k in fields if k.endswith("new_clients"))
    fields[keys[0]] = "-1"
    fields[keys[1]] = "9"
    response = admin.client.post("/kpi/targets", data={
        **fields, "month": MONTH, "csrf_token": csrf_token(page)})
    text = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Number must be between 0 and 100000." in text
    assert 'value="-1"' in text
    assert 'value="9"' not in admin.text(f"/kpi?month={MONTH}")


def test_a_target_for_a_firm_without_a_row_is_set_by_name(admin, network):
    page = admin.text(f"/kpi?month={MONTH}")
    assert "Gamma Plastics" not in page.split("Set a target for another firm")[0]
    response = admin.client.post("/kpi/targets/new", data={
        "month": MONTH, "organization": "gamma", "new_clients": "3",
        "csrf_token": csrf_token(page)})
    assert response.status_code == 302
    after = admin.text(f"/kpi?month={MONTH}")
    assert f"Target for Gamma Plastics in {MONTH} set to 3." in after
    ambiguous = admin.client.post("/kpi/targets/new", data={
        "month": MONTH, "organization": "a", "new_clients": "3",
        "csrf_token": csrf_token(after)})
    assert ambiguous.status_code == 422
    assert "firms match" in ambiguous.get_data(as_text=True)


def test_the_kpi_downloads_as_csv_and_xlsx(app, admin, network, refer_to):
    kpi_with_activity(app, network, refer_to)
    response = admin.get(f"/kpi/export?month={MONTH}&format=csv")
    assert response.headers["Content-Disposition"] == f'attachment; filename="kpi-{MONTH}.csv"'
    assert response.content_type == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    alpha = next(row for row in rows if row["organization_name"] == "Alpha Machining")
    assert (alpha["new_client_credits"], alpha["target"]) == ("1", "4")
    xlsx = admin.get(f"/kpi/export?month={MONTH}&format=xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.get_data()), read_only=True).active
    header = next(sheet.iter_rows(values_only=True))
    assert header[:2] == ("organization_id", "organization_name")
    assert admin.get(f"/kpi/export?month={MONTH}&format=pdf").status_code == 404


def test_kpi_charts_are_png_images(app, admin, partner, network, refer_to):
    kpi_with_activity(app, network, refer_to)
    for path in (f"/kpi/chart.png?month={MONTH}", f"/kpi/chart.png?month={MONTH}&size=small",
                 "/kpi/chart.png?month=1999-01"):
        image = admin.get(path)
        assert image.content_type == "image/png", path
        assert image.get_data()[:8] == b"\x89PNG\r\n\x1a\n"
    history = partner.get(f"/kpi/history.png?organization_id={network.beta}")
    assert history.get_data()[:4] == b"\x89PNG"


def test_a_bad_month_falls_back_to_the_current_one(admin):
    response = admin.get("/kpi?month=2026-13")
    assert response.status_code == 302
    assert "Give the month as YYYY-MM" in admin.text(response.headers["Location"])


def test_paging_the_targets_table_saves_what_was_typed_first(app, admin, network):
    """Issue 16: 'Next' was a plain link, so targets typed on page 1 were lost."""
    from referral_service.db import session_scope
    from referral_service.services import kpi
    from referral_service.services.auth import SYSTEM

    firms = [add_org(app, f"Paged {number:02d} Works", KAOHSIUNG) for number in range(22)]
    with session_scope(app) as session:
        for firm in firms:  # a row each in the month's table
            kpi.set_target(session=session, organization_id=firm, month=MONTH,
                           new_clients=1, actor=SYSTEM)
    page = admin.text(f"/kpi?month={MONTH}")
    assert "Save and go to the next page" in page
    assert 'rel="next" href' not in page[page.index('name="targets-0'):]  # no bare link
    fields = dict(re.findall(r'name="(targets-\d+-(?:organization_id|new_clients))"[^>]*?'
                             r'value="([^"]*)"', page))
    first_key = sorted(k for k in fields if k.endswith("new_clients"))[0]
    first_firm = int(fields[first_key.replace("new_clients", "organization_id")])
    fields[first_key] = "7"
    response = admin.client.post("/kpi/targets", data={
        **fields, "month": MONTH, "go": "2", "csrf_token": csrf_token(page)})
    assert response.status_code == 302
    assert "page=2" in response.headers["Location"]
    second = admin.text(response.headers["Location"])
    assert "1 target saved for" in second and "Page 2 of 2" in second
    from models import KpiTarget

    with session_scope(app, write=False) as session:
        assert session.get(KpiTarget, ("organization", first_firm, MONTH)).new_clients == 7


def test_the_match_form_prefers_or_keeps_to_the_referring_firms_group(app, admin, network):
    # Delta, of Formosa Group like the referrer, is a little farther from the client than
    # Beta: preferring the group (weight 0.04) is a nudge, not a filter
    referrer = add_org(app, "Epsilon Trading", KAOHSIUNG, group="Formosa Group")
    add_org(app, "Delta Anodizing", NEAR_TAINAN, skills=["Anodizing"],
            group="Formosa Group")
    page = admin.text("/match")
    data = {"skills": "Anodizing", "city": "Tainan", "country": "TW", "limit": "5",
            "kinds": ["partner", "affiliate"], "csrf_token": csrf_token(page)}

    def names(**changes) -> list[str]:
        response = admin.client.post("/match", data={**data, **changes})
        assert response.status_code == 200, response.get_data(as_text=True)[:2000]
        return re.findall(r'<strong class="name">([^<]+)</strong>', response.get_data(as_text=True))

    assert names()[0] == "Beta Finishing"
    assert names(referrer=str(referrer), prefer_group="y")[0] == "Delta Anodizing"
    assert names(referrer="Epsilon Trading", same_group_only="y") == ["Delta Anodizing"]
    # a group option without a referring firm is refused beside the referrer's field
    response = admin.client.post("/match", data={**data, "same_group_only": "y"})
    assert response.status_code == 422
    assert 'id="referrer-error"' in response.get_data(as_text=True)
    # a referring firm of no group: said beside the option
    response = admin.client.post("/match", data={**data, "prefer_group": "y",
                                                 "referrer": str(network.gamma)})
    assert response.status_code == 422
    assert "belongs to no group" in response.get_data(as_text=True)
