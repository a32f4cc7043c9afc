"""Head office's skill aliases and merges (SPEC section 8), through the API."""

from __future__ import annotations

import pytest

API = "/api/v1"
# A client in Kaohsiung, where org_payload's firms are.
KAOHSIUNG = {"latitude": 22.63, "longitude": 120.30}


def skills_listed(client, headers) -> dict[str, dict]:
    response = client.get(f"{API}/skills", headers=headers)
    assert response.status_code == 200
    return {item["skill"]: item for item in response.get_json()["items"]}


def match(client, headers, skills: list[str]) -> list[dict]:
    response = client.post(f"{API}/match", json={"skills": skills, "location": KAOHSIUNG,
                                                  "limit": 10}, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["candidates"]


def test_an_alias_asks_for_its_skill_and_matched_skills_names_it_as_the_client_did(
        client, admin_headers, make_org):
    miller = make_org(name="Miller", skills=["CNC Machining"], description="Parts.")
    response = client.post(f"{API}/skills/aliases", json={"alias": "CNC milling",
                                                          "skill": "cnc-machining"},
                           headers=admin_headers)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["alias"] == "cnc-milling"
    assert response.get_json()["skill"] == "cnc-machining"

    assert skills_listed(client, admin_headers)["cnc-machining"]["aliases"] == ["cnc-milling"]
    [candidate] = match(client, admin_headers, ["cnc milling", "welding"])
    assert candidate["organization_id"] == miller["id"]
    assert candidate["matched_skills"] == ["cnc-milling"]
    assert candidate["missing_skills"] == ["welding"]

    removed = client.delete(f"{API}/skills/aliases/cnc-milling", headers=admin_headers)
    assert removed.status_code == 204
    assert skills_listed(client, admin_headers)["cnc-machining"]["aliases"] == []
    for gone in ("cnc-milling", "%E2%80%94"):  # removed; no letters at all
        missing = client.delete(f"{API}/skills/aliases/{gone}", headers=admin_headers)
        assert missing.status_code == 404
        assert missing.content_type == "application/problem+json"


def test_merge_repoints_every_firms_tags_at_once_and_leaves_the_old_slug_as_an_alias(
        client, admin_headers, make_org):
    old_only = make_org(name="Old Spelling", skills=["Anodising old", "Welding"])
    both = make_org(name="Both Tags", skills=["anodizing", "anodising-old"])
    new_only = make_org(name="New Spelling", skills=["Anodizing"])
    etags = {org["id"]: client.get(f"{API}/organizations/{org['id']}",
                                   headers=admin_headers).headers["ETag"]
             for org in (old_only, both, new_only)}

    response = client.post(f"{API}/skills/merge", json={"from": "anodising-old",
                                                        "into": "anodizing"},
                           headers=admin_headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"from": "anodising-old", "into": "anodizing",
                                   "organizations": 2}

    def read(org):
        got = client.get(f"{API}/organizations/{org['id']}", headers=admin_headers)
        return got.get_json()["skills"], got.headers["ETag"]

    assert read(old_only)[0] == ["anodizing", "welding"]  # in place, keeping its order
    assert read(both)[0] == ["anodizing"]  # had both: one tag left
    assert read(new_only)[0] == ["anodizing"]
    # each touched profile has a new ETag, as a profile change gives; the other keeps its own
    assert read(old_only)[1] != etags[old_only["id"]]
    assert read(both)[1] != etags[both["id"]]
    assert read(new_only)[1] == etags[new_only["id"]]
    stale = client.patch(f"{API}/organizations/{both['id']}", json={"capacity": 3},
                         headers={**admin_headers, "If-Match": etags[both["id"]]})
    assert stale.status_code == 412

    listed = skills_listed(client, admin_headers)
    assert "anodising-old" not in listed
    assert listed["anodizing"] == {"skill": "anodizing", "organizations": 3,
                                   "aliases": ["anodising-old"]}
    # an old request still matches every firm, named as it asked
    candidates = match(client, admin_headers, ["anodising old"])
    assert {c["organization_id"] for c in candidates} == {old_only["id"], both["id"],
                                                          new_only["id"]}
    assert {tuple(c["matched_skills"]) for c in candidates} == {("anodising-old",)}
    audit = client.get(f"{API}/audit?object_type=skill", headers=admin_headers).get_json()
    assert [item["action"] for item in audit["items"]] == ["skill.merge"]


def test_a_merge_also_repoints_the_aliases_of_the_merged_skill(client, admin_headers,
                                                              make_org):
    make_org(name="Milling Shop", skills=["Milling"])
    make_org(name="Machining Shop", skills=["Machining"])
    assert client.post(f"{API}/skills/aliases", json={"alias": "fraising", "skill": "milling"},
                       headers=admin_headers).status_code == 201
    assert client.post(f"{API}/skills/merge", json={"from": "milling", "into": "machining"},
                       headers=admin_headers).status_code == 200
    assert skills_listed(client, admin_headers)["machining"]["aliases"] == ["fraising",
                                                                             "milling"]


@pytest.mark.parametrize("role", ["crm", "partner"])
def test_only_head_office_manages_aliases_and_merges(client, make_key, make_org,
                                                     admin_headers, role):
    org = make_org(name="Shop", skills=["Welding", "Brazing"])
    headers = make_key(role, org["id"] if role == "partner" else None)
    for method, path, body in (
            ("post", "/skills/aliases", {"alias": "tig", "skill": "welding"}),
            ("post", "/skills/merge", {"from": "brazing", "into": "welding"})):
        response = getattr(client, method)(API + path, json=body, headers=headers)
        assert response.status_code == 403, response.get_json()
        assert response.content_type == "application/problem+json"
    client.post(f"{API}/skills/aliases", json={"alias": "tig", "skill": "welding"},
                headers=admin_headers)
    assert client.delete(f"{API}/skills/aliases/tig", headers=headers).status_code == 403
    listed = skills_listed(client, headers)  # anyone may read the vocabulary
    assert listed["welding"]["aliases"] == ["tig"]
    assert "brazing" in listed


@pytest.mark.parametrize(("path", "body", "status", "field"), [
    ("/skills/merge", {"from": "welding", "into": "Welding"}, 422, "into"),
    ("/skills/merge", {"from": "welding", "into": "no-such-skill"}, 404, None),
    ("/skills/merge", {"from": "no-such-skill", "into": "welding"}, 404, None),
    ("/skills/merge", {"from": "welding"}, 422, "into"),
    ("/skills/merge", {"from": "welding", "into": "!!"}, 422, "into"),
    ("/skills/merge", {"from": "welding", "into": "brazing", "extra": 1}, 422, "extra"),
    ("/skills/aliases", {"alias": "tig welding", "skill": "no-such-skill"}, 404, None),
    ("/skills/aliases", {"alias": "welding", "skill": "welding"}, 422, "alias"),
    ("/skills/aliases", {"alias": "brazing", "skill": "welding"}, 409, "alias"),
    ("/skills/aliases", {"alias": "Weldings", "skill": "brazing"}, 409, "alias"),
    ("/skills/aliases", {"alias": 7, "skill": "welding"}, 422, "alias"),
    ("/skills/aliases", {"skill": "welding"}, 422, "alias"),
])
def test_bad_requests_are_clear_problems(client, admin_headers, make_org, path, body, status,
                                         field):
    make_org(name="Shop", skills=["Welding", "Brazing"])
    response = client.post(API + path, json=body, headers=admin_headers)
    assert response.status_code == status, response.get_json()
    assert response.content_type == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == status and problem["detail"]
    if field is not None:
        assert field in problem["errors"], problem
    assert skills_listed(client, admin_headers)["welding"]["organizations"] == 1


def test_an_alias_taken_or_pointing_at_an_alias_is_refused(client, admin_headers, make_org):
    make_org(name="Shop", skills=["Welding", "Brazing"])
    assert client.post(f"{API}/skills/aliases", json={"alias": "tig", "skill": "welding"},
                       headers=admin_headers).status_code == 201
    again = client.post(f"{API}/skills/aliases", json={"alias": "TIG", "skill": "brazing"},
                        headers=admin_headers)
    assert again.status_code == 409 and "welding" in again.get_json()["detail"]
    chained = client.post(f"{API}/skills/aliases", json={"alias": "mig", "skill": "tig"},
                          headers=admin_headers)
    assert chained.status_code == 422 and "skill" in chained.get_json()["errors"]


def test_a_tag_given_as_an_alias_is_stored_as_its_skill_and_the_list_filter_follows(
        client, admin_headers, make_org):
    make_org(name="Machining Shop", skills=["CNC machining"])
    client.post(f"{API}/skills/aliases", json={"alias": "cnc milling", "skill": "cnc-machining"},
                headers=admin_headers)
    later = make_org(name="Later Shop", skills=["CNC Milling", "cnc-machining", "Welding"])
    assert later["skills"] == ["cnc-machining", "welding"]
    listed = client.get(f"{API}/organizations?skill=CNC+milling", headers=admin_headers)
    assert {item["name"] for item in listed.get_json()["items"]} == {"Machining Shop",
                                                                       "Later Shop"}
    assert "cnc-milling" not in skills_listed(client, admin_headers)


def test_a_merge_takes_every_spelling_of_the_merged_skill(client, admin_headers, make_org):
    make_org(name="British", skills=["Anodising finishes"])
    make_org(name="American", skills=["anodized finish"])
    make_org(name="Target", skills=["Anodizing"])
    merged = client.post(f"{API}/skills/merge", json={"from": "anodised finishes",
                                                      "into": "anodizing"},
                         headers=admin_headers)
    assert merged.status_code == 200, merged.get_json()
    assert merged.get_json()["organizations"] == 2
    assert skills_listed(client, admin_headers)["anodizing"]["aliases"] == [
        "anodising-finishes", "anodized-finish"]
    # a need in a third spelling finds the alias, so every firm covers it
    candidates = match(client, admin_headers, ["Anodised Finishes"])
    assert len(candidates) == 3
    assert {tuple(c["matched_skills"]) for c in candidates} == {("anodised-finishes",)}


def test_the_longest_skill_takes_aliases_and_merges_and_both_are_audited(
        client, admin_headers, make_org):
    # A slug may hold 100 characters; the audit entry names it (it once held 50 on
    # PostgreSQL: a 500 found by schemathesis).
    longest, other = "s" * 100, "t" * 100
    make_org(name="Long Names", skills=[longest, other])
    aliased = client.post(f"{API}/skills/aliases", json={"alias": "long name",
                                                         "skill": longest},
                          headers=admin_headers)
    assert aliased.status_code == 201, aliased.get_json()
    merged = client.post(f"{API}/skills/merge", json={"from": other, "into": longest},
                         headers=admin_headers)
    assert merged.status_code == 200, merged.get_json()
    audited = client.get(f"{API}/audit?object_type=skill", headers=admin_headers).get_json()
    assert [entry["object_id"] for entry in audited["items"]].count(longest) == 2
