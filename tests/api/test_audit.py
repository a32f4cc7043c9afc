"""The audit log through the API: who changed what and when, for admins only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

BASE = "/api/v1/audit"


def test_profile_change_is_recorded_with_actor_time_object_and_changed_fields(
    client, admin_headers, make_key, make_org
):
    organization = make_org(capacity=10, description="Machining.")
    crm = make_key("crm")
    before = datetime.now(UTC)
    response = client.patch(f"/api/v1/organizations/{organization['id']}", headers=crm,
                            json={"capacity": 25, "description": "Machining and anodizing."})
    assert response.status_code == 200

    log = client.get(BASE, headers=admin_headers, query_string={
        "object_type": "organization", "object_id": str(organization["id"])})
    assert log.status_code == 200
    entries = log.get_json()["items"]
    assert [e["action"] for e in entries] == ["organization.update", "organization.create"]
    update = entries[0]
    assert update["actor"] == "key:test crm"
    assert update["object_type"] == "organization"
    assert update["object_id"] == str(organization["id"])
    assert update["changes"] == {
        "capacity": {"from": 10, "to": 25},
        "description": {"from": "Machining.", "to": "Machining and anodizing."},
    }
    at = datetime.fromisoformat(update["at"])
    assert before - timedelta(seconds=5) <= at <= datetime.now(UTC) + timedelta(seconds=5)


def test_api_key_created_with_the_cli_is_recorded_without_its_secret(app, client, admin_headers):
    # As `flask --app wsgi create-api-key` runs it: inside an app context.
    with app.app_context():
        result = app.test_cli_runner().invoke(
            args=["create-api-key", "--name", "CRM sync", "--role", "crm"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]

    body = client.get(BASE, headers=admin_headers,
                      query_string={"object_type": "api_key"}).get_json()
    created = [e for e in body["items"] if e["changes"].get("name") == "CRM sync"]
    assert len(created) == 1
    assert created[0]["action"] == "api_key.create"
    assert created[0]["actor"] == "system"
    assert created[0]["changes"]["role"] == "crm"
    assert secret not in str(body)


def test_list_is_newest_first_and_paged(client, admin_headers, make_org):
    for name in ("First", "Second", "Third"):
        make_org(name=name)
    page = client.get(BASE, headers=admin_headers, query_string={
        "object_type": "organization", "page": 1, "page_size": 2}).get_json()
    assert page["total"] == 3 and page["page"] == 1 and page["page_size"] == 2
    assert [e["changes"]["name"] for e in page["items"]] == ["Third", "Second"]
    rest = client.get(BASE, headers=admin_headers, query_string={
        "object_type": "organization", "page": 2, "page_size": 2}).get_json()
    assert [e["changes"]["name"] for e in rest["items"]] == ["First"]


def test_partner_and_crm_keys_get_403(client, make_key, make_org):
    organization = make_org()
    for headers in (make_key("partner", organization["id"]), make_key("crm")):
        response = client.get(BASE, headers=headers)
        assert response.status_code == 403
        assert response.mimetype == "application/problem+json"


def test_without_a_key_it_is_401(client):
    assert client.get(BASE).status_code == 401


def test_bad_paging_is_422(client, admin_headers):
    response = client.get(BASE, headers=admin_headers, query_string={"page_size": 501})
    assert response.status_code == 422
    assert "page_size" in response.get_json()["errors"]
