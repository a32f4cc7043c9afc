"""A realistic demo data set: affiliates and partners across Taiwan and the region."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Lead, Organization, Referral, User, Visit, utcnow
from referral_service.adapters.geocoding import Geocoder
from referral_service.schemas.visits import VisitCreateSchema
from referral_service.services import auth, kpi, organizations, people, referrals, visits
from referral_service.services.auth import SYSTEM, Principal
from referral_service.services.errors import Conflict
from referral_service.services.unit_of_work import writes

ADMIN_EMAIL = "admin@demo.example"
ADMIN_PASSWORD = "demo-admin-2026"  # noqa: S105  (demo data, printed and documented)
PARTNER_EMAIL = "partner@demo.example"
PARTNER_PASSWORD = "demo-partner-2026"  # noqa: S105

# (city, country, latitude, longitude): real coordinates.
CITIES = [
    ("Taipei", "TW", 25.0330, 121.5654), ("New Taipei", "TW", 25.0120, 121.4657),
    ("Taoyuan", "TW", 24.9936, 121.3010), ("Hsinchu", "TW", 24.8138, 120.9675),
    ("Taichung", "TW", 24.1477, 120.6736), ("Changhua", "TW", 24.0809, 120.5385),
    ("Tainan", "TW", 22.9999, 120.2270), ("Kaohsiung", "TW", 22.6273, 120.3014),
    ("Pingtung", "TW", 22.6762, 120.4929), ("Yilan", "TW", 24.7570, 121.7533),
    ("Hualien", "TW", 23.9872, 121.6016), ("Keelung", "TW", 25.1276, 121.7392),
    ("Tokyo", "JP", 35.6762, 139.6503), ("Osaka", "JP", 34.6937, 135.5023),
    ("Seoul", "KR", 37.5665, 126.9780), ("Hong Kong", "HK", 22.3193, 114.1694),
    ("Shenzhen", "CN", 22.5431, 114.0579), ("Ho Chi Minh City", "VN", 10.8231, 106.6297),
    ("Bangkok", "TH", 13.7563, 100.5018), ("Penang", "MY", 5.4164, 100.3327),
    ("Singapore", "SG", 1.3521, 103.8198), ("Manila", "PH", 14.5995, 120.9842),
]

# (skill names, what the firm says of itself)
PROFILES = [
    (["CNC machining", "5-axis machining", "aluminium parts"],
     "Precision 5-axis CNC machining of aluminium and stainless housings, small to mid volume."),
    (["Anodizing", "Powder coating", "Surface finishing"],
     "Surface finishing: hard anodising of aluminium, powder coating and passivation."),
    (["Injection molding", "Mold design"],
     "Plastic injection moulding with in-house mould design, 50 to 850 tonne presses."),
    (["PCB assembly", "SMT", "Box build"],
     "SMT and through-hole PCB assembly, functional test and box build for electronics."),
    (["Sheet metal", "Laser cutting", "Welding"],
     "Sheet metal fabrication: fibre laser cutting, CNC bending, TIG and MIG welding."),
    (["Die casting", "CNC machining"],
     "Aluminium and zinc die casting with secondary machining and finishing."),
    (["Logistics", "Customs brokerage", "Warehousing"],
     "Freight forwarding, customs brokerage and bonded warehousing across Asia."),
    (["ERP consulting", "Software integration"],
     "ERP roll-outs and integration of factory systems with CRM and accounting."),
    (["Industrial design", "Prototyping", "3D printing"],
     "Product design, rapid prototyping and SLA/SLS 3D printing for hardware start-ups."),
    (["Quality inspection", "Metrology"],
     "Third-party quality inspection, CMM metrology and supplier audits."),
    (["Legal services", "IP registration"],
     "Company law, contracts and patent and trademark registration for manufacturers."),
    (["Accounting", "Tax advisory"],
     "Bookkeeping, tax filing and transfer pricing advice for cross-border groups."),
]

FIRM_WORDS = ["Formosa", "Pacific", "Jade", "Lotus", "Harbor", "Summit", "Eastern", "Golden",
              "Blue Ocean", "Evergreen", "Silver Bay", "Orchid", "Phoenix", "Crescent"]
FIRM_SUFFIX = ["Precision", "Industries", "Technology", "Works", "Solutions", "Manufacturing"]


@dataclass(frozen=True)
class DemoResult:
    """What the seed created, with the sign-ins to print."""

    organizations: int
    referrals: int
    admin_email: str
    admin_password: str
    partner_email: str
    partner_password: str
    api_key: str
    # More partner sign-ins (same password as the partner above), one per few firms.
    other_partner_emails: tuple[str, ...] = field(default=())


@writes
def seed(*, session: Session, geocoder: Geocoder, count: int = 36) -> DemoResult | None:
    """Create the demo organizations, users and an admin key; None if already seeded."""
    if session.scalar(select(User.id).where(User.email == ADMIN_EMAIL)) is not None:
        return None
    rng = random.Random(2026)  # the same demo every time
    created: list[Organization] = []
    for index in range(count):
        skills, description = PROFILES[index % len(PROFILES)]
        home = CITIES[index % len(CITIES)]
        offices = [_office(home, "Head office", rng)]
        if rng.random() < 0.4:
            offices.append(_office(rng.choice(CITIES), "Branch", rng))
        name = (f"{FIRM_WORDS[index % len(FIRM_WORDS)]} "
                f"{FIRM_SUFFIX[(index * 7) % len(FIRM_SUFFIX)]}")
        if index >= len(FIRM_WORDS):
            name += f" {home[0]}"
        created.append(organizations.create(
            session=session, actor=SYSTEM, geocoder=geocoder,
            data={
                "name": name,
                "kind": "affiliate" if index % 3 == 0 else "partner",
                "group": "Formosa Group" if index % 3 == 0 else None,
                "skills": skills,
                "description": description,
                "offices": offices,
                "capacity": rng.choice([None, 10, 20, 40]),
                "active": True,
                "external_ref": f"CRM-{1000 + index}",
            },
        ))
    # People, visits and referral sources draw from their own generator, so that the
    # organizations, referrals and targets above stay what they always were.
    people_rng = random.Random(2027)
    # The firms with portal users have a regional sales force and log visits; the others
    # a head of sales and two salespeople (kept small: seed-demo runs at every start).
    visiting = [created[1], *created[3::PARTNER_USER_EVERY]]
    staff = {organization.id: _seed_staff(session, organization, index, people_rng,
                                          regions=organization in visiting)
             for index, organization in enumerate(created)}
    auth.create_user(session=session, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, role="admin")
    # The demo partner signs in as a sales manager with salespeople reporting to them.
    auth.create_user(session=session, email=PARTNER_EMAIL, password=PARTNER_PASSWORD,
                     role="partner", organization_id=created[1].id,
                     person_id=staff[created[1].id].managers[0])
    others = []
    for organization in created[3::PARTNER_USER_EVERY]:
        email = f"{_slug(organization.name)}@demo.example"
        # The other partner sign-ins are salespeople.
        auth.create_user(session=session, email=email, password=PARTNER_PASSWORD,
                         role="partner", organization_id=organization.id,
                         person_id=staff[organization.id].sellers[0])
        others.append(email)
    _, api_key = auth.create_api_key(session=session, name="demo admin", role="admin")
    made = _seed_referrals(session, geocoder, created, rng, featured=created[1], staff=staff,
                           sources=people_rng)
    made += _seed_visits(session, geocoder, created, staff, people_rng, visiting=visiting)
    _backdate(session, made)
    _seed_targets(session, created, rng)
    return DemoResult(organizations=len(created), referrals=len(made), admin_email=ADMIN_EMAIL,
                      admin_password=ADMIN_PASSWORD, partner_email=PARTNER_EMAIL,
                      partner_password=PARTNER_PASSWORD, api_key=api_key,
                      other_partner_emails=tuple(others))


def _office(city: tuple[str, str, float, float], label: str, rng: random.Random) -> dict:
    name, country, latitude, longitude = city
    return {"label": f"{label} {name}", "city": name, "country": country,
            "latitude": latitude, "longitude": longitude,
            "service_radius_km": rng.choice([50.0, 100.0, 150.0, 300.0])}


# --- referrals and targets over the last HISTORY_MONTHS months -----------------------------

PARTNER_USER_EVERY = 6
HISTORY_MONTHS = 4
REFERRALS_PER_MONTH = 22
# The path each referral takes through the lifecycle, and how often, by month age.
PATHS = {
    "pending": (), "accepted": ("accepted",), "converted": ("accepted", "converted"),
    "lost": ("accepted", "lost"), "declined": ("declined",), "withdrawn": ("withdrawn",),
    "expired": ("expired",),
}
OLDER_MIX = {"converted": 38, "lost": 14, "declined": 14, "expired": 10, "withdrawn": 6,
             "accepted": 18}
CURRENT_MIX = {"pending": 34, "accepted": 24, "converted": 16, "declined": 10, "lost": 6,
               "withdrawn": 5, "expired": 5}
DECLINE_REASONS = ["No free capacity on that line until next quarter.",
                   "Outside our certified processes.", "Volume too small for our presses.",
                   "Client is a competitor of an existing customer."]
LOST_REASONS = ["Client chose a cheaper quote.", "Project postponed by the client.",
                "Lead time did not fit the client's launch."]
CLIENT_WORDS = ["Aurora", "Bamboo", "Cobalt", "Delta", "Ember", "Falcon", "Granite", "Horizon",
                "Iris", "Juniper", "Kestrel", "Lumen", "Maple", "Nimbus", "Onyx", "Peregrine",
                "Quartz", "Rapid", "Sakura", "Tidal", "Umber", "Vertex", "Willow", "Zephyr"]
CLIENT_TRADES = ["Robotics", "Cycles", "Audio", "Medical", "Drones", "Foods", "Lighting",
                 "Marine", "Solar", "Wearables", "Tools", "Optics", "Motors", "Sensors"]
CLIENT_SUFFIX = ["Ltd", "Co., Ltd.", "Inc", "GmbH", "Corp", "K.K.", "Pte Ltd"]
EXPIRY_DAYS = 14


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _month_start(now: datetime, back: int) -> datetime:
    index = now.year * 12 + now.month - 1 - back
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _timeline(path: tuple[str, ...], month_start: datetime, now: datetime,
              rng: random.Random) -> list[datetime] | None:
    """Return created_at (within the month) then one time per move, all in the past."""
    month_end = _month_start(month_start, -1)
    latest_created = min(now - timedelta(hours=2), month_end - timedelta(minutes=1))
    earliest = month_start
    if "expired" in path:
        latest_created = min(latest_created, now - timedelta(days=EXPIRY_DAYS, hours=1))
    if not path:
        # Still pending: sent within the expiry window, or the expiry job would close it.
        earliest = max(earliest, now - timedelta(days=EXPIRY_DAYS - 4))
    if earliest >= latest_created:
        return None
    span = (latest_created - earliest).total_seconds()
    return _move_times(earliest + timedelta(seconds=rng.uniform(0, span)), path, now, rng)


def _move_times(created: datetime, path: tuple[str, ...], now: datetime, rng: random.Random
                ) -> list[datetime] | None:
    """Return created then one time per move of `path`, all in the past (None if they cannot
    be in order)."""
    times, at = [created], created
    for status in path:
        if status == "expired":
            at = at + timedelta(days=EXPIRY_DAYS, minutes=rng.randint(5, 600))
        elif status in ("converted", "lost"):
            at = at + timedelta(days=rng.uniform(3, 20))
        else:
            at = at + timedelta(hours=rng.uniform(3, 120))
        times.append(min(at, now - timedelta(minutes=len(times))))
    return times if times == sorted(times) else None


def _client_name(index: int, rng: random.Random) -> str:
    word = CLIENT_WORDS[index % len(CLIENT_WORDS)]
    trade = CLIENT_TRADES[(index // len(CLIENT_WORDS)) % len(CLIENT_TRADES)]
    return f"{word} {trade} {rng.choice(CLIENT_SUFFIX)}"


def _seed_referrals(
    session: Session, geocoder: Geocoder, created: list[Organization], rng: random.Random, *,
    featured: Organization, staff: dict[int, Staff], sources: random.Random,
) -> list[tuple[int, list[datetime]]]:
    """Record referrals through the services; return each one's id and timeline (created,
    then one time per move) to date it back by."""
    now = utcnow()
    made: list[tuple[int, list[datetime]]] = []
    introducers: list[int] = []  # clients already referred: they introduce others
    plans = []
    for back in range(HISTORY_MONTHS - 1, -1, -1):
        mix = CURRENT_MIX if back == 0 else OLDER_MIX
        statuses = rng.choices(list(mix), weights=list(mix.values()), k=REFERRALS_PER_MONTH)
        plans.extend((back, status, None) for status in statuses)
    # The demo partner's dashboard: some waiting, some accepted, some sent, some closed.
    plans += [(0, "pending", "receiver")] * 4 + [(0, "accepted", "receiver")] * 2
    plans += [(0, "converted", "receiver"), (1, "lost", "receiver"), (0, "pending", "referrer"),
              (1, "converted", "referrer"), (2, "declined", "referrer")]
    # Every state shows up, whatever the draw.
    plans += [(0, "withdrawn", None), (1, "withdrawn", None), (1, "expired", None)]
    for index, (back, status, featured_as) in enumerate(plans):
        path = PATHS[status]
        times = _timeline(path, _month_start(now, back), now, rng)
        if times is None:
            continue
        receiver = featured if featured_as == "receiver" else rng.choice(created)
        referrer = featured if featured_as == "referrer" else rng.choice(
            [o for o in created if o.id not in (receiver.id, featured.id)] or created)
        if referrer.id == receiver.id:
            continue
        skills, description = PROFILES[created.index(receiver) % len(PROFILES)]
        office = receiver.offices[0]
        try:
            referral = referrals.record_referral(
                session=session, geocoder=geocoder, attribution_window_days=365,
                actor=_acting_for(referrer), data={
                    "referrer_organization_id": referrer.id,
                    "receiver_organization_id": receiver.id,
                    "client": {"name": _client_name(index, rng),
                               "external_ref": f"CRM-C{5000 + index}",
                               "location": {"latitude": office.latitude + rng.uniform(-0.2, 0.2),
                                            "longitude": office.longitude
                                            + rng.uniform(-0.2, 0.2)}},
                    "skills": rng.sample(skills, k=min(2, len(skills))),
                    "description": description.split(":")[0].split(",")[0],
                    "note": rng.choice(["", "Met them at the Taipei trade show.",
                                        "Urgent: samples needed this month."]),
                    "match_score": round(rng.uniform(0.55, 0.95), 3),
                    "source": _source(sources, introducers),
                    "referred_by_person_id": sources.choice(staff[referrer.id].everyone),
                })
        except Conflict:
            continue  # the receiver is full: the demo does without this one
        introducers.append(referral.referral.client_id)
        _move(session, referral.id, path, referrer, receiver, rng,
              owner=_owner(staff[receiver.id], sources, featured_as == "receiver"))
        made.append((referral.id, times))
    return made


def _source(rng: random.Random, introducers: list[int]) -> dict:
    """Return where a referral came from: mostly the firm itself, else a current client who
    introduced them, or an acquaintance."""
    kind = rng.choices(("organization", "client", "acquaintance"), weights=(55, 20, 25))[0]
    if kind == "client" and introducers:
        return {"kind": "client", "client_id": rng.choice(introducers)}
    if kind == "acquaintance":
        return {"kind": "acquaintance", "name": rng.choice(ACQUAINTANCES),
                "contact": rng.choice(ACQUAINTANCE_CONTACTS)}
    return {"kind": "organization"}


def _owner(staff: Staff, rng: random.Random, featured: bool) -> int:
    """Return who at the receiver owns an accepted client: at the demo partner's firm, the
    signed-in manager or one of their salespeople, so that their dashboard shows them."""
    if featured:
        manager = staff.managers[0]
        return rng.choice([manager, *staff.reports[manager]])
    return rng.choice(staff.sellers)


def _move(session: Session, referral_id: int, path: tuple[str, ...], referrer: Organization,
          receiver: Organization, rng: random.Random, *, owner: int) -> None:
    """Move a referral along `path`, each move by the side that makes it."""
    for status in path:
        actor = (SYSTEM if status == "expired" else _acting_for(referrer)
                 if status == "withdrawn" else _acting_for(receiver))
        reason = (rng.choice(DECLINE_REASONS) if status == "declined"
                  else rng.choice(LOST_REASONS) if status == "lost"
                  else f"No answer within {EXPIRY_DAYS} days." if status == "expired"
                  else None)
        referrals.move_referral(session=session, referral_id=referral_id, status=status,
                                reason=reason, actor=actor,
                                owner_person_id=owner if status == "accepted" else None)


def _acting_for(organization: Organization) -> Principal:
    return Principal(name=f"demo:{organization.name}", role="partner",
                     organization_id=organization.id)


def _backdate(session: Session, made: list[tuple[int, list[datetime]]]) -> None:
    """Give each referral and its history the times of its timeline (one transaction)."""
    for referral_id, times in made:
        referral = session.get(Referral, referral_id)
        referral.created_at = times[0]
        for event, at in zip(referral.history, times, strict=True):
            event.at = at
            if event.status != "pending":
                setattr(referral, f"{event.status}_at", at)
        referral.updated_at = times[-1]


def _seed_targets(session: Session, created: list[Organization], rng: random.Random) -> None:
    """Agree targets with about three firms in four for every demo month."""
    now = utcnow()
    for back in range(HISTORY_MONTHS - 1, -1, -1):
        month = _month_start(now, back).strftime("%Y-%m")
        for organization in created:
            if rng.random() < 0.75:
                kpi.set_target(session=session, organization_id=organization.id, month=month,
                               new_clients=rng.randint(1, 3), actor=SYSTEM)


# --- the sales force: departments, people, visits and leads (SPEC section 9) ----------------

GIVEN_NAMES = ["Mei", "Kenji", "Ana", "Wei", "Hana", "Jun", "Li", "Yuki", "Min-jun", "Siti",
               "Arjun", "Thanh", "Nok", "Chen", "Aiko", "Bao", "Ji-woo", "Rina", "Tomas", "Ivy"]
FAMILY_NAMES = ["Lin", "Sato", "Cruz", "Chang", "Wang", "Tanaka", "Kim", "Nguyen", "Tan",
                "Huang", "Santos", "Lee", "Chua", "Wu", "Yamamoto", "Park", "Ong", "Reyes"]
# (sub-department, salespeople under its manager; the demo partner's firm has one more)
REGIONS = (("North", 2), ("South", 2))
ACQUAINTANCES = ["Mr Chen, a former colleague", "Ms Huang from the rotary club",
                 "Dr Sato, a university friend", "Mrs Park, a neighbour"]
ACQUAINTANCE_CONTACTS = ["0912-345-678", "met at the golf club", "LINE: sato.k",
                         "via the chamber of commerce"]
VISITED_WORDS = ["Everbright", "Kingstone", "Luckyway", "Mountain", "Newland", "Oceanic",
                 "Prosper", "Riverside", "Sunrise", "Triumph", "Unity", "Victory"]
LEAD_WORDS = ["Amber", "Birch", "Cedar", "Dune", "Elm", "Fjord", "Glacier", "Hazel", "Indigo",
              "Jasper", "Kelp", "Linden", "Mesa", "Nova", "Oak", "Pine", "Reef", "Sierra",
              "Teak", "Vale"]
LEAD_TRADES = ["Bikes", "Kitchenware", "Drones", "Speakers", "Toys", "Scooters", "Lamps",
               "Watches", "Pumps", "Valves", "Robots", "Cameras", "Boats", "Fans", "Locks",
               "Heaters", "Chargers", "Printers"]
RELATIONSHIPS = ["their frame supplier", "a customer of theirs", "the owner's cousin",
                 "met at the Computex stand", "their former plant manager", "a sister company"]
EMPTY_HANDED_REASONS = ["The buyer was out; met the guard.",
                        "They froze purchasing until the new fiscal year.",
                        "Only a courtesy visit after their complaint; no new business asked."]
COMMITMENTS = [("Trial order of 200 housings", 180000, "TWD"),
               ("Re-order of last quarter's parts", 42000, "USD"),
               ("Samples of the new line for approval", None, None),
               ("Annual frame agreement, first call-off", 1200000, "JPY")]
LEAD_LOST_REASONS = ["Went with their usual supplier.", "Closed down.",
                     "Not interested after the first call."]
VISITS_PER_MONTH = (1, 1, 2)  # each salesperson, at random; the demo partner's people 2


@dataclass(frozen=True)
class Staff:
    """One organization's sales force: its head of sales, managers and salespeople."""

    head: int
    managers: list[int]
    sellers: list[int]
    # manager -> the salespeople reporting to them
    reports: dict[int, list[int]]

    @property
    def everyone(self) -> list[int]:
        """Every person of the sales force."""
        return [self.head, *self.managers, *self.sellers]


def _seed_staff(session: Session, organization: Organization, index: int,
                rng: random.Random, *, regions: bool) -> Staff:
    """Create Sales with its head and, with `regions`, sub-departments North and South, their
    managers (the heads) and salespeople; without, two salespeople under the head."""
    domain = f"{_slug(organization.name)}.example"

    def department(name: str, parent_id: int | None = None) -> int:
        return people.create_department(session=session, actor=SYSTEM, data={
            "organization_id": organization.id, "name": name, "parent_id": parent_id,
            "external_ref": f"DEP-{1000 + index}-{name.upper()}"}).id

    def person(role: str, department_id: int, manager_id: int | None) -> int:
        number = len(made)
        name = f"{rng.choice(GIVEN_NAMES)} {rng.choice(FAMILY_NAMES)}"
        made.append(name)
        return people.create_person(session=session, actor=SYSTEM, data={
            "organization_id": organization.id, "name": f"{name} ({role})",
            "email": f"{_slug(name)}.{number}@{domain}", "external_ref": f"EMP-{1000 + index}-"
            f"{number}", "department_id": department_id, "manager_id": manager_id}).person.id

    made: list[str] = []
    sales = department("Sales")
    head = person("head of sales", sales, None)
    if not regions:
        sellers = [person("sales", sales, head) for _ in range(2)]
        people.update_department(session=session, department_id=sales, actor=SYSTEM,
                                 data={"head_person_id": head})
        return Staff(head=head, managers=[], sellers=sellers, reports={head: sellers})
    managers, sellers, reports = [], [], {}
    for region, count in REGIONS:
        region_id = department(region, sales)
        manager = person(f"sales manager {region}", region_id, head)
        reports[manager] = [person("sales", region_id, manager)
                            for _ in range(count + (index == 1))]
        people.update_department(session=session, department_id=region_id, actor=SYSTEM,
                                 data={"head_person_id": manager})
        managers.append(manager)
        sellers += reports[manager]
    people.update_department(session=session, department_id=sales, actor=SYSTEM,
                             data={"head_person_id": head})
    return Staff(head=head, managers=managers, sellers=sellers, reports=reports)


def _seed_visits(
    session: Session, geocoder: Geocoder, created: list[Organization], staff: dict[int, Staff],
    rng: random.Random, *, visiting: list[Organization],
) -> list[tuple[int, list[datetime]]]:
    """Record a few months of visits by the salespeople of `visiting`; mark their leads won,
    lost or refer them on. Return the referrals made of leads with their timelines."""
    now = utcnow()
    schema = VisitCreateSchema()
    made: list[tuple[int, list[datetime]]] = []
    counter = iter(range(10**6))
    for organization in visiting:
        index = created.index(organization)
        featured = organization is visiting[0]
        office = organization.offices[0]
        pool = [(f"{VISITED_WORDS[(index + k) % len(VISITED_WORDS)]} "
                 f"{CLIENT_TRADES[(index * 3 + k) % len(CLIENT_TRADES)]} Trading",
                 f"CRM-V{1000 + index}-{k}") for k in range(6)]
        for back in range(HISTORY_MONTHS - 1, -1, -1):
            start = _month_start(now, back)
            end = min(_month_start(start, -1), now - timedelta(hours=3))
            for seller in staff[organization.id].sellers:
                for _ in range(2 if featured else rng.choice(VISITS_PER_MONTH)):
                    visited_at = start + (end - start) * rng.random()
                    kind = ("empty" if featured and back == 0 and seller in staff[
                        organization.id].reports[staff[organization.id].managers[0]][:1]
                        else rng.choices(("empty", "commitment", "both", "leads"),
                                         weights=(12, 13, 15, 60))[0])
                    client_name, client_ref = rng.choice(pool)
                    body: dict = {
                        "person_id": seller, "visited_at": visited_at.isoformat(),
                        "client": {"name": client_name, "external_ref": client_ref},
                        "notes": rng.choice(["", "Met the purchasing manager.",
                                             "Toured the new assembly line."])}
                    if kind == "empty":
                        body["empty_handed_reason"] = rng.choice(EMPTY_HANDED_REASONS)
                    if kind in ("commitment", "both"):
                        description, amount, currency = rng.choice(COMMITMENTS)
                        body["commitment"] = {
                            "description": description, "amount": amount, "currency": currency,
                            "expected_on": (visited_at + timedelta(days=30)).date().isoformat()}
                    if kind in ("both", "leads"):
                        body["leads"] = [_lead_body(next(counter), office, rng)
                                         for _ in range(rng.choice((1, 1, 2, 2, 3)))]
                    # The firm's own key files the report (a person's sign-in would first
                    # work out whose reports they may file: slower, and the same here).
                    actor = _acting_for(organization)
                    visit = visits.record_visit(
                        session=session, data=schema.load(body), actor=actor, geocoder=geocoder,
                        attribution_window_days=365).visit
                    made += _follow_up(session, geocoder, visit, created, staff, actor, now, rng)
    _every_lead_status(session, visiting, now)
    return made


def _lead_body(number: int, office, rng: random.Random) -> dict:
    """Return one potential client a visited client named, near the firm's office."""
    skills, description = rng.choice(PROFILES)
    word = LEAD_WORDS[number % len(LEAD_WORDS)]
    trade = LEAD_TRADES[(number // len(LEAD_WORDS)) % len(LEAD_TRADES)]
    return {"name": f"{word} {trade} {rng.choice(CLIENT_SUFFIX)}",
            "external_ref": f"CRM-L{7000 + number}",
            "contact": f"{rng.choice(GIVEN_NAMES)} {rng.choice(FAMILY_NAMES)}, "
                       f"0{rng.randint(2, 9)}-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
            "skills": rng.sample(skills, k=min(2, len(skills))),
            "description": description.split(":")[0].split(",")[0],
            "location": {"latitude": office.latitude + rng.uniform(-0.2, 0.2),
                         "longitude": office.longitude + rng.uniform(-0.2, 0.2)},
            "relationship": rng.choice(RELATIONSHIPS)}


# What becomes of a lead, by how long ago it was brought back.
RECENT_LEADS = {"open": 70, "referred": 20, "lost": 10}
OLDER_LEADS = {"open": 30, "won": 20, "lost": 15, "referred": 35}
RECENT_DAYS = 10


def _follow_up(
    session: Session, geocoder: Geocoder, visit: Visit, created: list[Organization],
    staff: dict[int, Staff], actor: Principal, now: datetime, rng: random.Random,
) -> list[tuple[int, list[datetime]]]:
    """Date the visit back, then win, lose or refer some of its leads; return the referrals."""
    visit.created_at = min(visit.visited_at + timedelta(hours=rng.uniform(0.2, 6)),
                           now - timedelta(hours=1))
    made = []
    recent = now - visit.visited_at < timedelta(days=RECENT_DAYS)
    for lead in visit.leads:
        mix = RECENT_LEADS if recent else OLDER_LEADS
        fate = rng.choices(list(mix), weights=list(mix.values()))[0]
        if fate in ("won", "lost"):
            visits.move_lead(session=session, lead_id=lead.id, status=fate, actor=actor,
                             reason=rng.choice(LEAD_LOST_REASONS) if fate == "lost" else None)
        elif fate == "referred":
            referral = _refer(session, geocoder, visit, lead, created, staff, actor, now, rng)
            if referral is not None:
                made.append(referral)
        row = session.get(Lead, lead.id)
        row.created_at = visit.created_at
        row.updated_at = (visit.created_at if row.status == "open" else min(
            visit.created_at + timedelta(days=rng.uniform(1, 8)), now - timedelta(minutes=30)))
    return made


def _refer(
    session: Session, geocoder: Geocoder, visit: Visit, lead: Lead, created: list[Organization],
    staff: dict[int, Staff], actor: Principal, now: datetime, rng: random.Random,
) -> tuple[int, list[datetime]] | None:
    """Refer a lead to a firm with the skills it needs, as POST /leads/{id}/refer does."""
    profile = next((i for i, (skills, _) in enumerate(PROFILES)
                    if set(lead.skills) & set(organizations.normalize_skills(skills))), 0)
    fits = [o for i, o in enumerate(created)
            if i % len(PROFILES) == profile and o.id != visit.organization_id]
    receiver = rng.choice(fits or [o for o in created if o.id != visit.organization_id])
    created_at = visit.created_at + timedelta(hours=rng.uniform(2, 72))
    if created_at > now - timedelta(hours=2):
        return None
    age = now - created_at
    status = rng.choice(("pending", "accepted", "declined") if age < timedelta(days=RECENT_DAYS)
                        else ("converted", "converted", "lost", "accepted", "declined"))
    times = _move_times(created_at, PATHS[status], now, rng)
    if times is None:
        return None
    referrer = session.get(Organization, visit.organization_id)
    try:
        referral = referrals.record_referral(
            session=session, geocoder=geocoder, attribution_window_days=365, actor=actor, data={
                "referrer_organization_id": visit.organization_id,
                "receiver_organization_id": receiver.id,
                "client": {"name": lead.name, "external_ref": lead.external_ref,
                           "location": {"latitude": lead.latitude,
                                        "longitude": lead.longitude}},
                "skills": list(lead.skills), "description": lead.description,
                "note": f"Lead from a visit to {visit.named_client.name}.",
                "match_score": round(rng.uniform(0.6, 0.95), 3),
                "source": {"kind": "visit", "visit_id": visit.id, "lead_id": lead.id},
                "referred_by_person_id": lead.person_id})
    except Conflict:
        return None  # the receiver is full: the lead stays open
    _move(session, referral.id, PATHS[status], referrer, receiver, rng,
          owner=_owner(staff[receiver.id], rng, False))
    return referral.id, times


def _every_lead_status(session: Session, visiting: list[Organization], now: datetime) -> None:
    """Make sure the demo shows a won and a lost lead, whatever the draw."""
    for status in ("won", "lost"):
        if session.scalar(select(Lead.id).where(Lead.status == status).limit(1)) is None:
            lead = session.scalars(select(Lead).where(
                Lead.status == "open", Lead.organization_id == visiting[0].id)
                .order_by(Lead.id).limit(1)).one()
            visits.move_lead(session=session, lead_id=lead.id, status=status,
                             reason=LEAD_LOST_REASONS[0] if status == "lost" else None,
                             actor=SYSTEM)
