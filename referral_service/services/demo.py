"""A realistic demo data set: affiliates and partners across Taiwan and the region."""

from __future__ import annotations

import random
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Organization, User
from referral_service.services import auth, organizations
from referral_service.services.auth import SYSTEM
from referral_service.services.geocoding import Geocoder

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
    _, api_key = auth.create_api_key(session=session, name="demo admin", role="admin")
    return DemoResult(organizations=len(created), referrals=0, admin_email=ADMIN_EMAIL,
                      admin_password=ADMIN_PASSWORD, partner_email=PARTNER_EMAIL,
                      partner_password=PARTNER_PASSWORD, api_key=api_key)


def _office(city: tuple[str, str, float, float], label: str, rng: random.Random) -> dict:
    name, country, latitude, longitude = city
    return {"label": f"{label} {name}", "city": name, "country": country,
            "latitude": latitude, "longitude": longitude,
            "service_radius_km": rng.choice([50.0, 100.0, 150.0, 300.0])}
