"""import-organizations: CSV and JSON lines, created or updated by external_ref."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from models import AuditEntry, Office, Organization, OrganizationSkill

CSV = (
    "name,kind,group,skills,description,capacity,external_ref,city,country,latitude,longitude\n"
    "Harbor Works,partner,,CNC Machining;Anodizing,Machining,5,X1,Kaohsiung,TW,,\n"
    "Bad Kind,robot,,welding,,,X2,Tainan,TW,,\n"
    "No Place,partner,,welding,,,X3,Atlantisville,TW,,\n"
    "Coords Co,affiliate,Formosa,anodizing,,,X4,,,22.1,120.2\n"
    "Bad Capacity,partner,,welding,,lots,X5,Tainan,TW,,\n"
)


def run_import(app, tmp_path, name: str, content: str):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return app.test_cli_runner().invoke(args=["import-organizations", str(path)])


def test_csv_import_creates_good_rows_and_reports_each_rejected_line(app, session, tmp_path):
    result = run_import(app, tmp_path, "firms.csv", CSV)
    assert result.exit_code == 0, result.output
    assert "created 2, updated 0, rejected 3" in result.output
    assert "line 3: rejected: kind" in result.output
    assert "line 4: rejected: offices.0.city" in result.output
    assert "line 6: rejected: capacity" in result.output
    names = set(session.scalars(select(Organization.name)))
    assert names == {"Harbor Works", "Coords Co"}
    harbor = session.scalar(select(Organization).where(Organization.external_ref == "X1"))
    assert harbor.skills == ["cnc-machining", "anodizing"]
    assert abs(harbor.offices[0].latitude - 22.6) < 0.2
    assert harbor.stats.open_referrals == 0
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == 2


def test_import_again_updates_by_external_ref(app, session, tmp_path):
    run_import(app, tmp_path, "a.csv", CSV)
    lines = [
        json.dumps({"name": "Harbor Works Renamed", "kind": "partner", "external_ref": "X1",
                    "skills": ["welding"],
                    "offices": [{"city": "Taichung", "country": "TW"}]}),
        "{not json",
        json.dumps({"name": "Fresh", "kind": "partner",
                    "offices": [{"latitude": 25.03, "longitude": 121.56}]}),
        json.dumps(["a list"]),
    ]
    result = run_import(app, tmp_path, "b.jsonl", "\n".join(lines) + "\n")
    assert "created 1, updated 1, rejected 2" in result.output, result.output
    assert "line 2: rejected: not valid JSON" in result.output
    harbor = session.scalar(select(Organization).where(Organization.external_ref == "X1"))
    assert harbor.name == "Harbor Works Renamed"
    assert harbor.skills == ["welding"]
    assert harbor.version == 2
    assert session.scalar(select(func.count()).select_from(Office)
                          .where(Office.organization_id == harbor.id)) == 1
    assert session.scalar(select(func.count()).select_from(OrganizationSkill)
                          .where(OrganizationSkill.organization_id == harbor.id)) == 1


def test_repeated_external_ref_in_one_file_is_rejected_not_doubled(app, session, tmp_path):
    row = {"name": "Twin", "kind": "partner", "external_ref": "T1",
           "offices": [{"latitude": 25.03, "longitude": 121.56}]}
    result = run_import(app, tmp_path, "t.jsonl", json.dumps(row) + "\n" + json.dumps(row) + "\n")
    assert "created 1, updated 0, rejected 1" in result.output
    assert session.scalar(select(func.count()).select_from(Organization)) == 1


def test_seed_demo_loads_once_and_prints_sign_in(app, session):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "admin@demo.example" in first.output
    assert "rk_" in first.output
    count = session.scalar(select(func.count()).select_from(Organization))
    assert count >= 24
    countries = set(session.scalars(select(Office.country)))
    assert {"TW", "JP", "SG"} <= countries
    second = runner.invoke(args=["seed-demo"])
    assert "already" in second.output
    # A second start still says how to sign in, and how to get a new API key.
    assert "admin@demo.example / demo-admin-2026" in second.output
    assert "partner@demo.example / demo-partner-2026" in second.output
    assert "create-api-key --name <who> --role admin" in second.output
    assert session.scalar(select(func.count()).select_from(Organization)) == count


def test_create_api_key_prints_key_last_and_stores_only_a_hash(app, session):
    from models import ApiKey

    result = app.test_cli_runner().invoke(args=["create-api-key", "--name", "crm",
                                                "--role", "crm"])
    raw = result.output.strip().splitlines()[-1]
    assert raw.startswith("rk_")
    stored = session.scalar(select(ApiKey))
    assert raw not in (stored.key_hash, stored.prefix)
    assert len(stored.key_hash) == 64
    with app.test_client() as client:
        ok = client.get("/api/v1/skills", headers={"Authorization": f"Bearer {raw}"})
        assert ok.status_code == 200


def test_partner_key_needs_an_existing_organization(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["create-api-key", "--name", "p", "--role", "partner"]).exit_code
    result = runner.invoke(args=["create-api-key", "--name", "p", "--role", "partner",
                                 "--organization", "999"])
    assert result.exit_code != 0
    assert "does not exist" in result.output


def test_create_user_hashes_the_password(app, session, make_org):
    from models import User

    org = make_org()
    result = app.test_cli_runner().invoke(args=[
        "create-user", "--email", "Staff@Firm.example", "--role", "partner",
        "--organization", str(org["id"]), "--password", "correct horse"])
    assert result.exit_code == 0, result.output
    user = session.scalar(select(User))
    assert user.email == "staff@firm.example"
    assert "correct horse" not in user.password_hash


def test_a_partner_user_is_a_person_new_or_existing(app, session, make_org):
    from models import Person, User

    org = make_org()
    runner = app.test_cli_runner()
    made = runner.invoke(args=[
        "create-user", "--email", "mei@firm.example", "--role", "partner", "--name", "Mei Lin",
        "--organization", str(org["id"]), "--password", "correct horse"])
    assert made.exit_code == 0, made.output
    user = session.scalar(select(User).where(User.email == "mei@firm.example"))
    person = session.get(Person, user.person_id)
    assert (person.name, person.organization_id) == ("Mei Lin", org["id"])
    assert f"person {person.id}" in made.output
    taken = runner.invoke(args=[
        "create-user", "--email", "mei2@firm.example", "--role", "partner",
        "--organization", str(org["id"]), "--person", str(person.id), "--password", "x" * 9])
    assert taken.exit_code != 0 and "already sign in" in taken.output
    other = make_org(name="Other Firm")
    foreign = runner.invoke(args=[
        "create-user", "--email", "mole@firm.example", "--role", "partner",
        "--organization", str(other["id"]), "--person", str(person.id), "--password", "x" * 9])
    assert foreign.exit_code != 0
    assert session.scalar(select(User).where(User.email == "mole@firm.example")) is None


# ------------------------------------------------------------------- content and validation

FIRMS = [
    {"name": "Alpha Anodizing", "kind": "partner", "group": "Formosa Group",
     "skills": ["Anodizing", "anodizing", "CNC  Machining", "Aluminium anodising"],
     "description": "Colour anodising of aluminium parts.", "capacity": 12, "active": True,
     "external_ref": "P-1",
     "offices": [{"label": "HQ", "city": "Taichung", "country": "TW", "latitude": 24.15,
                  "longitude": 120.67, "service_radius_km": 50},
                 {"label": "Branch", "address": "1 Harbour Rd", "latitude": 22.6,
                  "longitude": 120.3}]},
    {"name": "Beta Works", "kind": "affiliate", "offices": [{"city": "Tainan", "country": "tw"}]},
    {"name": "Gamma Ltd", "kind": "partner", "group": None, "skills": [], "capacity": None,
     "active": False, "external_ref": "P-3", "description": "",
     "offices": [{"latitude": -33.5, "longitude": 151, "label": None}]},
]


def test_import_writes_exactly_these_rows(app, session, tmp_path, make_org):
    """Pins what an import writes in every table (the Core inserts, COPY on PostgreSQL)."""
    from models import OrganizationStats

    first = make_org(name="Made Through The API")
    result = run_import(app, tmp_path, "firms.jsonl",
                        "".join(json.dumps(firm) + "\n" for firm in FIRMS))
    assert result.output.strip().splitlines()[-1] == "created 3, updated 0, rejected 0"
    ids = [first["id"] + 1, first["id"] + 2, first["id"] + 3]
    rows = session.scalars(select(Organization).where(Organization.id.in_(ids))
                           .order_by(Organization.id)).all()
    assert [(o.id, o.name, o.kind, o.group, o.description, o.capacity, o.active,
             o.external_ref, o.version) for o in rows] == [
        (ids[0], "Alpha Anodizing", "partner", "Formosa Group",
         "Colour anodising of aluminium parts.", 12, True, "P-1", 1),
        (ids[1], "Beta Works", "affiliate", None, "", None, True, None, 1),
        (ids[2], "Gamma Ltd", "partner", None, "", None, False, "P-3", 1),
    ]
    now = rows[0].created_at
    assert {(o.created_at, o.updated_at) for o in rows} == {(now, now)}
    stats = session.scalars(select(OrganizationStats).where(
        OrganizationStats.organization_id.in_(ids)).order_by(OrganizationStats.organization_id))
    assert [(s.organization_id, s.open_referrals, s.won, s.failed, s.updated_at)
            for s in stats] == [(i, 0, 0, 0, now) for i in ids]
    skills = session.execute(select(OrganizationSkill.organization_id, OrganizationSkill.slug,
                                    OrganizationSkill.position)
                             .where(OrganizationSkill.organization_id.in_(ids))
                             .order_by(OrganizationSkill.organization_id,
                                       OrganizationSkill.position)).all()
    assert [tuple(row) for row in skills] == [
        (ids[0], "anodizing", 0), (ids[0], "cnc-machining", 1),
        (ids[0], "aluminium-anodising", 2)]
    offices = session.scalars(select(Office).where(Office.organization_id.in_(ids))
                              .order_by(Office.id)).all()
    got = [(o.organization_id, o.label, o.address, o.city, o.country, o.latitude, o.longitude,
            o.service_radius_km) for o in offices]
    assert got[:2] == [
        (ids[0], "HQ", None, "Taichung", "TW", 24.15, 120.67, 50.0),
        (ids[0], "Branch", "1 Harbour Rd", None, None, 22.6, 120.3, 100.0)]
    assert got[2][:5] == (ids[1], None, None, "Tainan", "TW")
    assert abs(got[2][5] - 23.0) < 0.2 and abs(got[2][6] - 120.2) < 0.2 and got[2][7] == 100.0
    assert got[3] == (ids[2], None, None, None, None, -33.5, 151.0, 100.0)
    assert [o.id for o in offices] == sorted(o.id for o in offices)
    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "organization.import")
                            .order_by(AuditEntry.id)).all()
    assert [(a.at, a.actor, a.object_type, a.object_id, a.changes) for a in audit] == [
        (now, "system", "organization", str(ids[0]), {"name": "Alpha Anodizing",
                                                      "external_ref": "P-1"}),
        (now, "system", "organization", str(ids[1]), {"name": "Beta Works",
                                                      "external_ref": None}),
        (now, "system", "organization", str(ids[2]), {"name": "Gamma Ltd",
                                                      "external_ref": "P-3"}),
    ]
    # the next firm made through the API takes the next id
    assert make_org(name="After The Import")["id"] == ids[2] + 1


PLACE = [{"latitude": 1, "longitude": 2}]
BAD_LINES = [
    ({"name": "Bad Kind", "kind": "robot", "offices": PLACE},
     "kind: Must be one of: affiliate, partner."),
    ({"name": "Nul\x00", "kind": "partner", "offices": PLACE},
     "name: Text cannot contain NUL (0x00) characters."),
    ({"name": "Lone \ud800", "kind": "partner", "offices": PLACE},
     "name: Text must be valid Unicode (no unpaired surrogates)."),
    ({"name": "", "kind": "partner", "offices": PLACE}, "name: Length must be between 1 and 200."),
    ({"name": "No offices", "kind": "partner"}, "offices: Missing data for required field."),
    ({"name": "Many", "kind": "partner", "offices": PLACE * 51},
     "offices: Length must be between 1 and 50."),
    ({"name": "Cap", "kind": "partner", "capacity": "lots", "offices": PLACE},
     "capacity: Not a valid integer."),
    ({"name": "Cap", "kind": "partner", "capacity": 2.5, "offices": PLACE},
     "capacity: Not a valid integer."),
    ({"name": "Cap", "kind": "partner", "capacity": -1, "offices": PLACE},
     "capacity: Must be greater than or equal to 0 and less than or equal to 1000000."),
    ({"name": "Active", "kind": "partner", "active": "maybe", "offices": PLACE},
     "active: Not a valid boolean."),
    ({"name": "Extra", "kind": "partner", "offices": PLACE, "foo": 1}, "foo: Unknown field."),
    ({"name": "Skill", "kind": "partner", "skills": ["!!!"], "offices": PLACE},
     "skills.0: Use at least one letter or digit."),
    ({"name": "Skill", "kind": "partner", "skills": ["ok", "\ufb03" * 40], "offices": PLACE},
     "skills.1: At most 100 characters once normalized."),
    ({"name": "Skill", "kind": "partner", "skills": ["ok", 7], "offices": PLACE},
     "skills.1: Not a valid string."),
    ({"name": "Lat", "kind": "partner", "offices": [{"latitude": 1}]},
     "offices.0.longitude: Give latitude and longitude together."),
    ({"name": "Lat", "kind": "partner", "offices": [{"latitude": 91, "longitude": 2}]},
     "offices.0.latitude: Must be greater than or equal to -90 and less than or equal to 90."),
    ({"name": "Radius", "kind": "partner",
      "offices": [{"latitude": 1, "longitude": 2, "service_radius_km": None}]},
     "offices.0.service_radius_km: Field may not be null."),
    ({"name": "Where", "kind": "partner", "offices": [{"label": "HQ"}]},
     "offices.0.city: Give coordinates, or a city (with country), or an address."),
    ({"name": "Country", "kind": "partner", "offices": [{"city": "Taipei", "country": "T1"}]},
     "offices.0.country: Use an ISO 3166-1 alpha-2 code such as TW."),
    ({"name": "City", "kind": "partner", "offices": [PLACE[0], {"city": "Atlantisville",
                                                                 "country": "TW"}]},
     "offices.1.city: Unknown city 'Atlantisville' in TW."),
]


def test_each_rejected_line_is_reported_with_its_number_and_reason(app, session, tmp_path):
    good = {"name": "Good", "kind": "partner", "offices": PLACE}
    lines = [json.dumps(good)]
    for record, _ in BAD_LINES:
        lines.append(json.dumps(record))
    lines.append('{"name": "NaN", "kind": "partner", '
                 '"offices": [{"latitude": NaN, "longitude": 2}]}')
    lines.append("[1, 2]")
    result = run_import(app, tmp_path, "bad.jsonl", "\n".join(lines) + "\n")
    expected = [f"line {number}: rejected: {reason}"
                for number, (_, reason) in enumerate(BAD_LINES, start=2)]
    expected.append(f"line {len(lines) - 1}: rejected: offices.0.latitude: Special numeric "
                    "values (nan or infinity) are not permitted.")
    expected.append(f"line {len(lines)}: rejected: a line must be a JSON object")
    expected.append(f"created 1, updated 0, rejected {len(BAD_LINES) + 2}")
    assert result.output.strip().splitlines()[-len(expected):] == expected
    assert session.scalar(select(func.count()).select_from(Organization)) == 1


def _typed(value):
    """The value with the type of every part, so that 1, 1.0 and True differ."""
    if isinstance(value, dict):
        return {key: _typed(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_typed(inner) for inner in value]
    return (type(value).__name__, value)


def _texts(low: int, high: int):
    from hypothesis import strategies as st

    return st.one_of(
        st.integers(max(0, low - 1), low + 1).map(lambda n: "a" * n),
        st.integers(high - 1, high + 1).map(lambda n: "\u00e9" * n),
        st.text(max_size=12),
        st.sampled_from(["Taipei", "a\x00b", "\ud800x", " ", "tw", "TW", "T1", "TW\n", "\u00c5l"]),
    )


def _numbers(low: float, high: float):
    from hypothesis import strategies as st

    return st.one_of(
        st.sampled_from([low, high, low - 1, high + 1, low - 1e-9, high + 1e-9, float(low),
                         float("nan"), float("inf"), "7", "1.5", True, False, 10**400]),
        st.floats(low - 10, high + 10), st.integers(int(low) - 2, int(high) + 2),
    )


def _records():
    """Lines near the usual shape: a plausible firm with a few fields and offices mutated."""
    from hypothesis import strategies as st

    anything = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.floats(),
                         st.text(max_size=3), st.just([]), st.just({}), st.just(["a"]))

    def field(usual, edges):
        return st.one_of(usual, usual, edges, anything)

    office_fields = {
        "label": field(st.sampled_from(["HQ", None]), _texts(0, 100)),
        "address": field(st.sampled_from(["1 Harbour Rd, Tainan"]), _texts(0, 300)),
        "city": field(st.sampled_from(["Tainan", "Kaohsiung"]), _texts(1, 100)),
        "country": field(st.sampled_from(["TW", "tw", "Jp"]), _texts(2, 2)),
        "latitude": field(st.floats(-90, 90), _numbers(-90, 90)),
        "longitude": field(st.floats(-180, 180), _numbers(-180, 180)),
        "service_radius_km": field(st.sampled_from([50, 100.0, 0.1]), _numbers(0.1, 20_000)),
        "id": st.integers(1, 3), "extra": anything,
    }
    usual_office = st.fixed_dictionaries(
        {"latitude": st.floats(-90, 90), "longitude": st.floats(-180, 180)},
        optional={key: office_fields[key] for key in ("label", "city", "country")})
    office = mutated(usual_office, office_fields, ("latitude", "longitude"))
    organization_fields = {
        "name": field(st.text(min_size=1, max_size=30), _texts(1, 200)),
        "kind": field(st.sampled_from(["partner", "affiliate"]),
                      st.sampled_from(["Partner", "robot", ""])),
        "group": field(st.sampled_from(["Formosa Group", None]), _texts(0, 100)),
        "skills": field(st.lists(st.text(min_size=1, max_size=20), max_size=4),
                        st.one_of(st.lists(_texts(1, 100), max_size=3),
                                  st.integers(199, 201).map(lambda n: ["x"] * n))),
        "description": field(st.text(max_size=30), _texts(0, 5000)),
        "offices": field(st.lists(office, min_size=1, max_size=3),
                         st.one_of(st.just([]), usual_office.map(lambda o: [o] * 50),
                                   usual_office.map(lambda o: [o] * 51))),
        "capacity": field(st.integers(0, 50) | st.none(), _numbers(0, 1_000_000)),
        "active": field(st.booleans(), st.sampled_from([0, 1, "true", "yes"])),
        "external_ref": field(st.text(min_size=1, max_size=10) | st.none(), _texts(1, 100)),
        "extra": anything,
    }
    usual = st.fixed_dictionaries(
        {"name": st.text(min_size=1, max_size=30), "kind": st.sampled_from(["partner"]),
         "offices": st.lists(office, min_size=1, max_size=2)},
        optional={key: organization_fields[key] for key in
                  ("group", "skills", "description", "capacity", "active", "external_ref")})
    return mutated(usual, organization_fields, ("name", "kind", "offices"))


def mutated(usual, fields, droppable):
    """Records drawn from `usual` with up to two fields redrawn from `fields` and up to one
    of `droppable` left out."""
    from hypothesis import strategies as st

    @st.composite
    def draw_record(draw):
        record = dict(draw(usual))
        for key in draw(st.lists(st.sampled_from(sorted(fields)), max_size=2, unique=True)):
            record[key] = draw(fields[key])
        for key in draw(st.lists(st.sampled_from(droppable), max_size=1)):
            record.pop(key, None)
        return record

    return draw_record()


def test_compiled_load_is_exactly_the_schemas_load():
    """Whatever the compiled load accepts, the schema accepts too and loads to the same data;
    whatever the schema refuses, the compiled load leaves to it."""
    from hypothesis import HealthCheck, given, settings
    from marshmallow import ValidationError

    from referral_service.schemas.compiled import compile_load
    from referral_service.schemas.organizations import OrganizationCreateSchema

    schema = OrganizationCreateSchema()
    quick_load = compile_load(schema)
    accepted = []

    @settings(max_examples=1500, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(_records())
    def check(raw):
        quick = quick_load(raw)
        if quick is None:
            return
        accepted.append(raw)
        try:
            loaded = schema.load(raw)
        except ValidationError as error:
            raise AssertionError(f"compiled load accepted what the schema refuses: {error}")
        assert _typed(loaded) == _typed(quick)

    check()
    assert len(accepted) > 300  # the generator reaches the compiled path, not only the schema
    for firm in FIRMS:  # the usual lines take the compiled path
        raw = json.loads(json.dumps(firm))
        assert _typed(quick_load(raw)) == _typed(schema.load(raw)), firm["name"]


def test_a_limit_changed_in_the_schema_changes_what_the_import_accepts(
        app, session, tmp_path, monkeypatch):
    from marshmallow import fields, validate

    from referral_service.schemas.organizations import OrganizationCreateSchema
    from referral_service.services import importing

    class Shorter(OrganizationCreateSchema):
        name = fields.String(required=True, validate=validate.Length(min=1, max=5))

    monkeypatch.setattr(importing, "OrganizationCreateSchema", Shorter)
    lines = [{"name": "Short", "kind": "partner", "offices": PLACE},
             {"name": "Longer", "kind": "partner", "offices": PLACE}]
    result = run_import(app, tmp_path, "n.jsonl", "".join(json.dumps(f) + "\n" for f in lines))
    assert result.output.strip().splitlines()[-2:] == [
        "line 2: rejected: name: Length must be between 1 and 5.",
        "created 1, updated 0, rejected 1"]


def test_the_import_and_the_api_write_the_same_rows(app, client, admin_headers, session,
                                                     tmp_path):
    """One writer: the same input gives the same profile, skills, offices and version (the
    import's firm named apart: two active firms may not share a name)."""
    def written(ref):
        org = session.scalar(select(Organization).where(Organization.external_ref == ref))
        return ((org.name.removesuffix(" (imported)"), org.kind, org.group, org.description,
                 org.capacity, org.active, org.version, org.skills),
                [(o.label, o.address, o.city, o.country, o.latitude, o.longitude,
                  o.service_radius_km) for o in org.offices])

    for number, firm in enumerate(FIRMS):
        api = {**json.loads(json.dumps(firm)), "external_ref": f"API-{number}"}
        imported = {**json.loads(json.dumps(firm)), "external_ref": f"IMP-{number}",
                    "name": firm["name"] + " (imported)"}
        assert client.post("/api/v1/organizations", json=api,
                           headers=admin_headers).status_code == 201
        result = run_import(app, tmp_path, f"{number}.jsonl", json.dumps(imported) + "\n")
        assert result.output.strip().splitlines()[-1] == "created 1, updated 0, rejected 0"
        session.rollback()
        assert written(f"API-{number}") == written(f"IMP-{number}")
        # and a change made either way is the same change
        patch = {"name": f"Renamed {number}", "skills": ["welding"],
                 "offices": [{"city": "Tainan", "country": "TW", "service_radius_km": 80}]}
        api_id = session.scalar(select(Organization.id)
                                .where(Organization.external_ref == f"API-{number}"))
        assert client.patch(f"/api/v1/organizations/{api_id}", json=patch,
                            headers=admin_headers).status_code == 200
        again = {**imported, **patch, "name": f"Renamed {number} (imported)"}
        run_import(app, tmp_path, f"{number}-again.jsonl", json.dumps(again) + "\n")
        session.rollback()
        assert written(f"API-{number}") == written(f"IMP-{number}")


def test_reimport_of_an_unchanged_file_keeps_office_ids_and_version(app, session, tmp_path):
    """The CRM stores office ids: an unchanged line keeps them; a real change moves the
    version (and so the ETag)."""
    firms = [_firm("K1", "Keep", offices=[{"label": "HQ", "latitude": 25.0, "longitude": 121.5},
                                          {"city": "Tainan", "country": "TW"}]),
             _firm("K2", "Change", offices=[{"label": "HQ", "latitude": 25.0,
                                             "longitude": 121.5},
                                            {"label": "South", "latitude": 23.0,
                                             "longitude": 120.2}])]
    content = "".join(json.dumps(f) + "\n" for f in firms)
    run_import(app, tmp_path, "a.jsonl", content)

    def state():
        session.rollback()
        return {o.external_ref: (o.version, o.updated_at, [office.id for office in o.offices])
                for o in session.scalars(select(Organization))}

    first = state()
    result = run_import(app, tmp_path, "b.jsonl", content)
    assert result.output.strip().splitlines()[-1] == "created 0, updated 2, rejected 0"
    assert state() == first
    firms[1]["offices"][1]["service_radius_km"] = 321.0
    run_import(app, tmp_path, "c.jsonl", "".join(json.dumps(f) + "\n" for f in firms))
    after = state()
    assert after["K1"] == first["K1"]
    version, updated_at, office_ids = after["K2"]
    assert version == first["K2"][0] + 1 and updated_at > first["K2"][1]
    assert office_ids[0] == first["K2"][2][0]  # unchanged office: same id
    assert len(office_ids) == 2


def test_geocoding_is_asked_once_per_place(app):
    from referral_service.adapters.geocoding import GeocodingError, Place
    from referral_service.db import session_scope
    from referral_service.services.importing import import_organizations

    calls = []

    class Counting:
        def geocode(self, *, city=None, country=None, address=None):
            calls.append((city, country, address))
            if city == "Nowhere":
                raise GeocodingError("Unknown city 'Nowhere' in TW.", field="city")
            return Place(22.6, 120.3, city or "", "TW")

    records = [(number, {"name": f"Firm {number}", "kind": "partner",
                         "offices": [{"city": city, "country": "TW"}]})
               for number, city in enumerate(["Tainan", "Nowhere", "Tainan", "Nowhere"], 1)]
    with app.app_context(), session_scope() as session:
        report = import_organizations(session=session, records=records, geocoder=Counting())
    assert calls == [("Tainan", "TW", None), ("Nowhere", "TW", None)]
    assert report.created == 2
    assert report.rejected == [(2, "offices.0.city: Unknown city 'Nowhere' in TW."),
                               (4, "offices.0.city: Unknown city 'Nowhere' in TW.")]


def test_the_import_path_does_not_load_scikit_learn():
    """scoring.MatchIndex (numpy, scikit-learn) loads on first use, not with the app or CLI."""
    import subprocess
    import sys

    code = ("import sys; import referral_service.services.importing; "
            "import referral_service.services.organizations; import scoring; "
            "from referral_service import create_app; "
            "create_app({'DATABASE_URL': 'sqlite://', 'SECRET_KEY': 'x'}); "
            "print(sorted(m for m in ('sklearn', 'scipy', 'numpy') if m in sys.modules)); "
            "from scoring import MatchIndex; print('sklearn' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["[]", "True"]


def test_a_bulk_import_refreshes_postgresql_statistics(app, session, tmp_path, monkeypatch):
    """The index sync's plan depends on them (22 ms instead of 1.6 ms at 100k before ANALYZE)."""
    import pytest
    from sqlalchemy import text

    from referral_service.services import importing

    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite keeps no planner statistics to refresh")
    monkeypatch.setattr(importing, "ANALYZE_AFTER_CREATED", 2)
    analyzed = text("SELECT coalesce(analyze_count, 0) FROM pg_stat_user_tables "
                    "WHERE relname = 'organizations'")
    before = session.scalar(analyzed)
    session.rollback()
    lines = [json.dumps({"name": f"Firm {n}", "kind": "partner", "external_ref": f"A-{n}",
                         "offices": [{"latitude": 25.0, "longitude": 121.5}]})
             for n in range(3)]

    result = run_import(app, tmp_path, "firms.jsonl", "\n".join(lines) + "\n")

    assert result.exit_code == 0, result.output
    assert session.scalar(analyzed) > before


def _firm(ref: str, name: str, **fields):
    return {"name": name, "kind": "partner", "external_ref": ref,
            "offices": [{"latitude": 25.0, "longitude": 121.5}], **fields}


def test_reimport_writes_exactly_what_update_writes(app, session, tmp_path):
    """Pins a re-import by external_ref: the rows and audit entries organizations.update writes.

    An unchanged line keeps its version, updated_at, audit log and office ids (offices given
    again without id, unchanged, keep their rows); an office kept by id stays; a line the
    update refuses is rejected with the service's reason and the others are written.
    """
    from models import OrganizationStats

    two_offices = [{"label": "HQ", "latitude": 25.0, "longitude": 121.5},
                   {"label": "South", "city": "Tainan", "country": "TW", "latitude": 23.0,
                    "longitude": 120.2, "service_radius_km": 50.0}]
    created = [
        _firm("U1", "Same", skills=["Anodizing", "Welding"], capacity=5, offices=two_offices),
        _firm("U2", "Old Name"),
        _firm("U3", "Skills", skills=["x", "y", "z"]),
        _firm("U4", "Keeper", offices=two_offices),
        _firm("U5", "Refused"),
    ]
    result = run_import(app, tmp_path, "a.jsonl", "".join(json.dumps(f) + "\n" for f in created))
    assert result.output.strip().splitlines()[-1] == "created 5, updated 0, rejected 0"
    org = {o.external_ref: o for o in session.scalars(select(Organization))}
    ids = {ref: o.id for ref, o in org.items()}
    office_ids = {ref: [office.id for office in o.offices] for ref, o in org.items()}
    stamps = {ref: o.updated_at for ref, o in org.items()}
    stats_before = session.execute(select(OrganizationStats.organization_id,
                                          OrganizationStats.updated_at)).all()
    first_new_office = max(max(v) for v in office_ids.values()) + 1
    lines = [
        created[0],
        _firm("U2", "New Name", capacity=7, active=False),
        _firm("U3", "Skills", skills=["Z", "w", "x"]),
        _firm("U4", "Keeper", offices=[{"id": office_ids["U4"][1], "latitude": 23.0,
                                        "longitude": 120.2, "service_radius_km": 42.0}]),
        _firm("U5", "Refused", offices=[{"id": office_ids["U1"][0], "latitude": 1.0,
                                         "longitude": 2.0}]),
        _firm("U2", "Again"),
        _firm("U7", ""),
        _firm("U6", "Brand New"),
    ]
    result = run_import(app, tmp_path, "b.jsonl", "".join(json.dumps(f) + "\n" for f in lines))
    assert result.output.strip().splitlines()[-4:] == [
        f"line 5: rejected: offices.0.id: Unknown office id {office_ids['U1'][0]}.",
        "line 6: rejected: external_ref 'U2' repeats an earlier line",
        "line 7: rejected: name: Length must be between 1 and 200.",
        "created 1, updated 4, rejected 3"]
    session.rollback()  # a fresh read transaction: the import committed in its own session
    org = {o.external_ref: o for o in session.scalars(select(Organization))}
    ids["U6"] = org["U6"].id
    assert {ref: (o.name, o.capacity, o.active, o.version, o.updated_at != stamps.get(ref))
            for ref, o in org.items()} == {
        "U1": ("Same", 5, True, 1, False),
        "U2": ("New Name", 7, False, 2, True),
        "U3": ("Skills", None, True, 2, True),
        "U4": ("Keeper", None, True, 2, True),
        "U5": ("Refused", None, True, 1, False),
        "U6": ("Brand New", None, True, 1, True),
    }
    assert {ref: o.skills for ref, o in org.items()} == {
        "U1": ["anodizing", "welding"], "U2": [], "U3": ["z", "w", "x"], "U4": [], "U5": [],
        "U6": []}
    assert session.execute(select(OrganizationSkill.slug, OrganizationSkill.position)
                           .where(OrganizationSkill.organization_id == ids["U3"])
                           .order_by(OrganizationSkill.position)).all() == [
        ("z", 0), ("w", 1), ("x", 2)]
    offices = {ref: [(office.id, office.label, office.city, office.latitude,
                      office.service_radius_km) for office in o.offices]
               for ref, o in org.items()}
    assert offices == {
        # given again without ids, unchanged: the same rows, no new version
        "U1": [(office_ids["U1"][0], "HQ", None, 25.0, 100.0),
               (office_ids["U1"][1], "South", "Tainan", 23.0, 50.0)],
        "U2": [(office_ids["U2"][0], None, None, 25.0, 100.0)],
        "U3": [(office_ids["U3"][0], None, None, 25.0, 100.0)],
        "U4": [(office_ids["U4"][1], "South", "Tainan", 23.0, 42.0)],  # kept by id
        "U5": [(office_ids["U5"][0], None, None, 25.0, 100.0)],  # refused: untouched
        "U6": [(first_new_office, None, None, 25.0, 100.0)],
    }
    stats_after = session.execute(select(OrganizationStats.organization_id,
                                         OrganizationStats.updated_at)
                                  .where(OrganizationStats.organization_id != ids["U6"])).all()
    assert sorted(stats_after) == sorted(stats_before)
    audit = session.execute(select(AuditEntry.actor, AuditEntry.action, AuditEntry.object_id,
                                   AuditEntry.changes)
                            .order_by(AuditEntry.id).offset(len(created))).all()
    south = {"label": "South", "address": None, "city": "Tainan", "country": "TW",
             "latitude": 23.0, "longitude": 120.2}
    assert [tuple(row) for row in audit] == [
        ("system", "organization.update", str(ids["U2"]), {
            "name": {"from": "Old Name", "to": "New Name"},
            "capacity": {"from": None, "to": 7}, "active": {"from": True, "to": False}}),
        ("system", "organization.update", str(ids["U3"]), {
            "skills": {"from": ["x", "y", "z"], "to": ["z", "w", "x"]}}),
        ("system", "organization.update", str(ids["U4"]), {"offices": {
            "from": [{"label": "HQ", "address": None, "city": None, "country": None,
                      "latitude": 25.0, "longitude": 121.5, "service_radius_km": 100.0},
                     {**south, "service_radius_km": 50.0}],
            "to": [{**south, "service_radius_km": 42.0}]}}),
        ("system", "organization.import", str(ids["U6"]), {"name": "Brand New",
                                                           "external_ref": "U6"}),
    ]


def test_an_import_line_taking_an_active_firms_name_is_rejected_naming_the_field(
    app, session, tmp_path
):
    lines = [{"name": "Harbor Works", "kind": "partner", "offices": PLACE},
             {"name": "HARBOR works", "kind": "partner", "offices": PLACE},
             {"name": "Other Works", "kind": "partner", "offices": PLACE}]
    result = run_import(app, tmp_path, "n.jsonl", "".join(json.dumps(f) + "\n" for f in lines))
    assert result.output.strip().splitlines()[-2:] == [
        "line 2: rejected: name: another active organization already has this name",
        "created 2, updated 0, rejected 1"]
    again = run_import(app, tmp_path, "m.jsonl", json.dumps(
        {"name": "other works", "kind": "partner", "offices": PLACE}) + "\n")
    assert again.output.strip().splitlines()[-1] == "created 0, updated 0, rejected 1"
    assert sorted(session.scalars(select(Organization.name))) == ["Harbor Works", "Other Works"]


def test_set_password_and_deactivate_user_from_the_cli(app, session, make_org):
    from werkzeug.security import check_password_hash

    from models import User

    org = make_org()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["create-user", "--email", "kim@firm.example", "--role",
                               "partner", "--organization", str(org["id"]),
                               "--password", "first password"]).exit_code == 0
    changed = runner.invoke(args=["set-password", "--email", "Kim@Firm.example",
                                  "--password", "second password"])
    assert changed.exit_code == 0, changed.output
    user = session.scalar(select(User).where(User.email == "kim@firm.example"))
    session.refresh(user)
    assert check_password_hash(user.password_hash, "second password")
    assert user.session_epoch == 1
    short = runner.invoke(args=["set-password", "--email", "kim@firm.example",
                                "--password", "short"])
    assert short.exit_code != 0 and "too short" in short.output
    assert runner.invoke(args=["set-password", "--email", "nobody@firm.example",
                               "--password", "whatever123"]).exit_code != 0
    gone = runner.invoke(args=["deactivate-user", "--email", "kim@firm.example"])
    assert gone.exit_code == 0, gone.output
    session.rollback()  # end the read's snapshot (SQLite) to see the CLI's write
    session.refresh(user)
    assert user.active is False and user.session_epoch == 2


def test_a_sqlite_import_widens_the_page_cache_only_while_it_runs(app, session, tmp_path,
                                                                  monkeypatch):
    """Its batches write with sql.BULK_PAGE_CACHE_KIB of page cache; the pooled connection
    gets its own size back afterwards (a web worker's)."""
    import pytest
    from sqlalchemy import text

    from referral_service.adapters import sql
    from referral_service.db import get_engine

    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("SQLite only: PostgreSQL's buffers are the server's")
    with get_engine(app).connect() as connection:
        default = connection.execute(text("PRAGMA cache_size")).scalar()
    seen = []
    insert_many = sql.insert_many

    def spy(batch_session, rows):
        seen.append(batch_session.execute(text("PRAGMA cache_size")).scalar())
        insert_many(batch_session, rows)

    monkeypatch.setattr(sql, "insert_many", spy)
    result = run_import(app, tmp_path, "firms.csv", CSV)
    assert result.exit_code == 0, result.output
    assert seen == [-sql.BULK_PAGE_CACHE_KIB]
    with get_engine(app).connect() as connection:
        assert connection.execute(text("PRAGMA cache_size")).scalar() == default != seen[0]


def test_an_import_of_several_batches_writes_each_firm_and_its_event_once(
        app, session, tmp_path, monkeypatch):
    """A unit of work per sql.import_batch firms (here 2): a rejected line in one batch spares
    the rest, and the events' ids follow the order they were written in."""
    from models import OutboxEvent
    from referral_service.adapters import sql

    monkeypatch.setitem(sql.IMPORT_BATCH, session.get_bind().dialect.name, 2)
    lines = [{"name": f"Batch Firm {number}", "kind": "partner", "external_ref": f"B-{number}",
              "offices": PLACE} for number in range(5)]
    lines.insert(2, {"name": "Bad Kind", "kind": "robot", "offices": PLACE})
    result = run_import(app, tmp_path, "batches.jsonl",
                        "".join(json.dumps(line) + "\n" for line in lines))
    assert result.output.strip().splitlines()[-2:] == [
        "line 3: rejected: kind: Must be one of: affiliate, partner.",
        "created 5, updated 0, rejected 1"]
    firms = session.scalars(select(Organization).where(Organization.name.like("Batch Firm %"))
                            .order_by(Organization.id)).all()
    assert [firm.external_ref for firm in firms] == [f"B-{number}" for number in range(5)]
    events = session.scalars(select(OutboxEvent).where(OutboxEvent.type == "organization.changed")
                             .order_by(OutboxEvent.id)).all()
    assert [event.payload["id"] for event in events] == [firm.id for firm in firms]
    assert [event.event_id for event in events] == sorted(event.event_id for event in events)
