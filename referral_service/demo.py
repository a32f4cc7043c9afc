"""A realistic demo data set: affiliates and partners across Taiwan and the region."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Organization, Referral, User, utcnow
from referral_service.adapters.geocoding import Geocoder
from referral_service.services import auth, kpi, organizations, referrals
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
    auth.create_user(session=session, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, role="admin")
    auth.create_user(session=session, email=PARTNER_EMAIL, password=PARTNER_PASSWORD,
                     role="partner", organization_id=created[1].id)
    others = []
    for organization in created[3::PARTNER_USER_EVERY]:
        email = f"{_slug(organization.name)}@demo.example"
        auth.create_user(session=session, email=email, password=PARTNER_PASSWORD,
                         role="partner", organization_id=organization.id)
        others.append(email)
    _, api_key = auth.create_api_key(session=session, name="demo admin", role="admin")
    made = _seed_referrals(session, geocoder, created, rng, featured=created[1])
    _seed_targets(session, created, rng)
    return DemoResult(organizations=len(created), referrals=made, admin_email=ADMIN_EMAIL,
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
    created = earliest + timedelta(seconds=rng.uniform(0, span))
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


def _seed_referrals(session: Session, geocoder: Geocoder, created: list[Organization],
                    rng: random.Random, *, featured: Organization) -> int:
    """Record referrals through the services, then date them back over the last months."""
    now = utcnow()
    made: list[tuple[int, list[datetime]]] = []
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
                })
        except Conflict:
            continue  # the receiver is full: the demo does without this one
        for status_ in path:
            actor = (SYSTEM if status_ == "expired" else _acting_for(referrer)
                     if status_ == "withdrawn" else _acting_for(receiver))
            reason = (rng.choice(DECLINE_REASONS) if status_ == "declined"
                      else rng.choice(LOST_REASONS) if status_ == "lost"
                      else f"No answer within {EXPIRY_DAYS} days." if status_ == "expired"
                      else None)
            referrals.move_referral(session=session, referral_id=referral.id,
                                    status=status_, reason=reason, actor=actor)
        made.append((referral.id, times))
    _backdate(session, made)
    return len(made)


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
