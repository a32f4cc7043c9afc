"""Write the labelled matching evaluation set: firms.jsonl and needs.jsonl (see README.md).

    python bench/data/match_eval/build_eval_set.py      # rewrites the two files, deterministic

The firms are drawn (seeded) from the trade catalogue below, written by hand: each trade's tag
spellings, its descriptions in English, Chinese (Taiwan firms) and Japanese (Japan firms), and
the trades a person would call related. A few firms are placed by hand for the cases of issue
12 (SPECIAL_FIRMS). The needs are written by hand (NEEDS): what the person asks for, in their
words, where, and which trade(s) that means and which trades are related. Which firms are
relevant to a need follows from those hand labels and the firms' facts by the rule in
`judge`, never from the scorer: trade, whether an office reaches the client within its own
radius, free capacity and the firm's record.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 12

# (lat, lon, country) of the cities firms and clients are placed around
CITIES = {
    "Taipei": (25.0330, 121.5654, "TW"), "Taoyuan": (24.9936, 121.3010, "TW"),
    "Hsinchu": (24.8138, 120.9675, "TW"), "Taichung": (24.1477, 120.6736, "TW"),
    "Changhua": (24.0809, 120.5380, "TW"), "Tainan": (22.9999, 120.2270, "TW"),
    "Kaohsiung": (22.6273, 120.3014, "TW"),
    "Tokyo": (35.6762, 139.6503, "JP"), "Nagoya": (35.1815, 136.9066, "JP"),
    "Hamamatsu": (34.7108, 137.7261, "JP"), "Osaka": (34.6937, 135.5023, "JP"),
    "Kobe": (34.6901, 135.1955, "JP"), "Kyoto": (35.0116, 135.7681, "JP"),
    "Fukuoka": (33.5904, 130.4017, "JP"),
    "Busan": (35.1796, 129.0756, "KR"), "Seoul": (37.5665, 126.9780, "KR"),
    "Ho Chi Minh City": (10.8231, 106.6297, "VN"), "Hanoi": (21.0278, 105.8342, "VN"),
    "Bangkok": (13.7563, 100.5018, "TH"), "Stuttgart": (48.7758, 9.1829, "DE"),
}
TAIWAN = [c for c, v in CITIES.items() if v[2] == "TW"]
JAPAN = [c for c, v in CITIES.items() if v[2] == "JP"]
OTHERS = [c for c, v in CITIES.items() if v[2] not in ("TW", "JP")]

# trade -> tag spellings (as firms type them), English phrases, Chinese, Japanese, related trades
TRADES: dict[str, dict] = {
    "anodizing": {
        "tags": ["Anodizing", "Anodising", "anodised finishes", "Hard anodizing", "Anodized"],
        "en": ["Hard anodising of aluminium parts.",
               "Anodizing and dyeing of aluminum bicycle components.",
               "Sulphuric and hard anodizing, colour matching, sealing."],
        "zh": "鋁合金陽極處理、硬質陽極、染色。",
        "ja": "アルミニウムのアルマイト処理（硬質アルマイト）。",
        "related": ["electroplating", "powder-coating"]},
    "electroplating": {
        "tags": ["Electroplating", "Zinc plating", "Nickel plating", "electroplated coatings"],
        "en": ["Zinc and nickel electroplating of steel parts.",
               "Electroplating of fasteners, bolts and brackets."],
        "zh": "電鍍（鍍鋅、鍍鎳）。", "ja": "電気めっき（亜鉛めっき・ニッケルめっき）。",
        "related": ["anodizing", "powder-coating"]},
    "powder-coating": {
        "tags": ["Powder coating", "Powder coatings", "Powder-coated finishes"],
        "en": ["Powder coating of steel and aluminium frames.",
               "Epoxy and polyester powder coatings, any RAL colour."],
        "zh": "粉體塗裝。", "ja": "粉体塗装。",
        "related": ["anodizing", "electroplating"]},
    "cnc-machining": {
        "tags": ["CNC machining", "CNC machined parts", "5-axis machining", "CNC turning"],
        "en": ["Precision CNC machining of aluminium and steel.",
               "5-axis machining of housings and brackets, titanium too.",
               "CNC turning and milling, prototypes to series."],
        "zh": "CNC精密加工、五軸加工。", "ja": "CNC精密加工・5軸加工。",
        "related": ["sheet-metal", "die-casting", "heat-treatment"]},
    "welding": {
        "tags": ["Welding", "TIG welding", "Welded assemblies", "Welding services"],
        "en": ["TIG and MIG welding of steel and aluminium frames.",
               "Welded assemblies and structural steelwork."],
        "zh": "焊接（氬焊）。", "ja": "溶接（TIG溶接）。",
        "related": ["sheet-metal"]},
    "sheet-metal": {
        "tags": ["Sheet metal fabrication", "Laser cutting", "Bending", "Sheet-metal work"],
        "en": ["Laser cutting and bending of stainless and mild steel sheet.",
               "Sheet metal enclosures, punching and folding."],
        "zh": "鈑金加工、雷射切割、折彎。", "ja": "板金加工・レーザー切断・曲げ。",
        "related": ["welding", "cnc-machining"]},
    "die-casting": {
        "tags": ["Aluminium die casting", "Die casting", "Die-cast parts"],
        "en": ["Aluminium die casting of bicycle parts and gearbox housings.",
               "High pressure die casting in aluminium and zinc."],
        "zh": "鋁壓鑄。", "ja": "アルミダイカスト。",
        "related": ["cnc-machining", "mould-making"]},
    "injection-moulding": {
        "tags": ["Injection moulding", "Injection molding", "Plastic injection moulded parts"],
        "en": ["Plastic injection moulding of housings, 100 to 100,000 pieces.",
               "Injection molding of ABS, PC and nylon parts."],
        "zh": "塑膠射出成型。", "ja": "プラスチック射出成形。",
        "related": ["mould-making", "3d-printing"]},
    "mould-making": {
        "tags": ["Mould making", "Mold making", "Tooling", "Moulds"],
        "en": ["Mould making for injection and die casting tools.",
               "Precision moulds and tooling, EDM and grinding."],
        "zh": "模具製作。", "ja": "金型製作。",
        "related": ["injection-moulding", "die-casting"]},
    "3d-printing": {
        "tags": ["3D printing", "Additive manufacturing", "Rapid prototyping"],
        "en": ["3D printing of prototypes in nylon and resin.",
               "Rapid prototyping by SLS, SLA and metal additive manufacturing."],
        "zh": "3D列印、快速原型。", "ja": "3Dプリント・試作。",
        "related": ["injection-moulding", "industrial-design"]},
    "pcb-assembly": {
        "tags": ["PCB assembly", "SMT assembly", "Electronics manufacturing services"],
        "en": ["SMT and through-hole PCB assembly, box build.",
               "Electronics manufacturing: PCB assembly, testing and repair."],
        "zh": "電路板組裝（SMT）。", "ja": "プリント基板実装（SMT）。",
        "related": ["wire-harness"]},
    "wire-harness": {
        "tags": ["Wire harnesses", "Cable assembly", "Wire harness"],
        "en": ["Wire harnesses and cable assemblies for appliances and cars.",
               "Cable assembly, crimping and overmoulding."],
        "zh": "線束加工。", "ja": "ワイヤーハーネス加工。",
        "related": ["pcb-assembly"]},
    "heat-treatment": {
        "tags": ["Heat treatment", "Vacuum hardening", "Carburizing"],
        "en": ["Vacuum hardening, carburising and nitriding of tool steel.",
               "Heat treatment of gears and shafts."],
        "zh": "熱處理（真空淬火、滲碳）。", "ja": "熱処理（真空焼入れ・浸炭）。",
        "related": ["testing-lab"]},
    "testing-lab": {
        "tags": ["Materials testing", "Salt spray testing", "Testing laboratory"],
        "en": ["ISO 17025 laboratory: salt spray, hardness and tensile tests.",
               "Materials testing and failure analysis of coated parts."],
        "zh": "材料檢測、鹽霧測試。", "ja": "材料試験・塩水噴霧試験。",
        "related": ["heat-treatment"]},
    "tax-accounting": {
        "tags": ["Tax advice", "Accounting", "Bookkeeping", "Tax returns"],
        "en": ["Tax advice, bookkeeping and annual accounts for companies.",
               "Certified accountants: tax returns, VAT and payroll."],
        "zh": "稅務諮詢、記帳、會計師事務所。", "ja": "税理士・税務相談・記帳代行。",
        "related": ["legal", "customs-logistics"]},
    "legal": {
        "tags": ["Company law", "Contracts", "Legal services"],
        "en": ["Company law, contract drafting and review, disputes.",
               "Law firm: contracts, employment law and company formation."],
        "zh": "公司法、合約審閱、律師事務所。", "ja": "会社法・契約書・法律事務所。",
        "related": ["tax-accounting", "patents"]},
    "patents": {
        "tags": ["Patent filing", "Intellectual property", "Trademarks"],
        "en": ["Patent attorneys: patent filing, trademarks and designs.",
               "Intellectual property protection in Asia and Europe."],
        "zh": "專利申請、商標註冊。", "ja": "特許出願・商標登録。",
        "related": ["legal", "translation"]},
    "translation": {
        "tags": ["Translation", "Translations", "Interpreting", "Localisation"],
        "en": ["Translation of manuals and contracts, English, Chinese and Japanese.",
               "Technical translations and interpreting at trade fairs."],
        "zh": "翻譯（中英日）、口譯。", "ja": "翻訳（日英中）・通訳。",
        "related": ["patents"]},
    "customs-logistics": {
        "tags": ["Customs brokerage", "Freight forwarding", "Logistics"],
        "en": ["Customs clearance and freight forwarding by sea and air.",
               "Logistics: containers, warehousing and customs brokerage."],
        "zh": "報關、貨運承攬、海運物流。", "ja": "通関・フォワーディング・物流。",
        "related": ["tax-accounting"]},
    "it-services": {
        "tags": ["Web development", "Software development", "IT support"],
        "en": ["Websites, online shops and custom software.",
               "Software development and IT support for small companies."],
        "zh": "網站與軟體開發。", "ja": "ウェブ・ソフトウェア開発。",
        "related": ["marketing"]},
    "industrial-design": {
        "tags": ["Industrial design", "Product design"],
        "en": ["Industrial design of tools and consumer products.",
               "Product design from sketch to CAD and prototype."],
        "zh": "產品設計、工業設計。", "ja": "プロダクトデザイン・工業デザイン。",
        "related": ["3d-printing"]},
    "packaging": {
        "tags": ["Packaging printing", "Corrugated boxes", "Packaging design"],
        "en": ["Printed boxes and corrugated packaging for export goods.",
               "Packaging design and printing, gift boxes."],
        "zh": "包裝設計與印刷、紙箱。", "ja": "パッケージ印刷・段ボール。",
        "related": []},
    "recruitment": {
        "tags": ["Recruitment", "Staffing", "Executive search"],
        "en": ["Recruitment of engineers and factory staff.",
               "Staffing agency: temporary workers and headhunting."],
        "zh": "人力仲介、人才招募。", "ja": "人材紹介・派遣。",
        "related": []},
    "marketing": {
        "tags": ["Digital marketing", "Trade show marketing", "Marketing"],
        "en": ["Digital marketing, social media and trade fair campaigns.",
               "Marketing for industrial companies: websites, fairs, catalogues."],
        "zh": "數位行銷、展覽行銷。", "ja": "デジタルマーケティング・展示会。",
        "related": ["it-services"]},
    "bicycle-parts": {
        "tags": ["Bicycle components", "Bicycle frames"],
        "en": ["Maker of aluminium bicycle frames and parts.",
               "Bicycle components: handlebars, stems and seat posts."],
        "zh": "自行車零件製造。", "ja": "自転車部品製造。",
        "related": []},
}
# Words that many firms of every trade use about themselves: they make plain-language needs
# share words with unrelated firms, as real profiles do.
FILLERS = [
    "Family-owned since 1987.", "Small batches welcome.", "We export to Europe and the US.",
    "ISO 9001 certified.", "Fast quotes, English spoken.", "Serving customers across Asia.",
    "Reliable delivery for small and medium companies.", "Parts for the automotive industry.",
]
RADII = [5.0, 30.0, 60.0, 100.0, 100.0, 150.0, 300.0]


def destination(origin: tuple[float, float], km: float, bearing_deg: float) -> tuple[float, float]:
    """Return the point km away from origin on a sphere (good enough to place offices)."""
    radius = 6371.0088
    lat1, lon1, bearing = map(math.radians, (*origin, bearing_deg))
    delta = km / radius
    lat2 = math.asin(math.sin(lat1) * math.cos(delta)
                     + math.cos(lat1) * math.sin(delta) * math.cos(bearing))
    lon2 = lon1 + math.atan2(math.sin(bearing) * math.sin(delta) * math.cos(lat1),
                             math.cos(delta) - math.sin(lat1) * math.sin(lat2))
    return round(math.degrees(lat2), 5), round((math.degrees(lon2) + 540) % 360 - 180, 5)


def near(city: str, km: float, bearing: float) -> tuple[float, float]:
    lat, lon, _ = CITIES[city]
    return destination((lat, lon), km, bearing)


def office(office_id: int, city: str, km: float, bearing: float, radius: float) -> dict:
    lat, lon = near(city, km, bearing)
    return {"id": office_id, "label": city, "country": CITIES[city][2], "latitude": lat,
            "longitude": lon, "service_radius_km": radius}


def drawn_firms(rng: random.Random, next_id: list[int]) -> list[dict]:
    """About a dozen firms of each trade, Taiwan 45%, Japan 35%, the rest elsewhere."""
    firms = []
    for trade, spec in TRADES.items():
        for _ in range(12):
            region = rng.choices((TAIWAN, JAPAN, OTHERS), (45, 35, 20))[0]
            home = rng.choice(region)
            offices = [office(next_id[1], home, rng.uniform(0.5, 15), rng.uniform(0, 360),
                              rng.choice(RADII))]
            next_id[1] += 1
            for _ in range(rng.choice((0, 0, 0, 1, 1, 2))):
                offices.append(office(next_id[1], rng.choice(region), rng.uniform(0.5, 15),
                                      rng.uniform(0, 360), rng.choice(RADII)))
                next_id[1] += 1
            tags = rng.sample(spec["tags"], rng.randint(1, min(3, len(spec["tags"]))))
            trades = [trade]
            if spec["related"] and rng.random() < 0.2:
                extra = rng.choice(spec["related"])
                tags.append(rng.choice(TRADES[extra]["tags"]))
                trades.append(extra)
            words = [rng.choice(spec["en"])] + rng.sample(FILLERS, rng.randint(0, 2))
            country = CITIES[home][2]
            if country == "TW":
                words.append(spec["zh"])
            elif country == "JP":
                words.append(spec["ja"])
            capacity = rng.choice((None, None, None, 5, 10))
            won, lost = rng.randint(0, 8), rng.randint(0, 6)
            firms.append({
                "id": next_id[0], "name": f"{home} {spec['tags'][0]} {next_id[0]}",
                "kind": rng.choice(("partner", "partner", "affiliate")),
                "trades": trades, "skills": tags, "description": " ".join(words),
                "offices": offices, "capacity": capacity,
                "open_referrals": 0 if capacity is None else rng.randint(0, capacity - 1),
                "won": won, "failed": lost, "group": None,
            })
            next_id[0] += 1
    return firms


def local_firms(rng: random.Random, next_id: list[int]) -> list[dict]:
    """Two firms of the asked trade in each city outside Taiwan and Japan that a need is in:
    the drawn firms are spread too thin there for those needs to have any answer."""
    firms = []
    wanted = sorted({(spec["at"][0], trade) for spec in NEEDS if spec["at"][0] in OTHERS
                     for trade in spec["asks"]})
    for city, trade in wanted:
        spec = TRADES[trade]
        for radius in (100.0, 30.0):
            tags = rng.sample(spec["tags"], rng.randint(1, 2))
            words = [rng.choice(spec["en"])] + rng.sample(FILLERS, rng.randint(0, 2))
            firms.append({
                "id": next_id[0], "name": f"{city} {spec['tags'][0]} {next_id[0]}",
                "kind": "partner", "trades": [trade], "skills": tags,
                "description": " ".join(words),
                "offices": [office(next_id[1], city, rng.uniform(1, 12), rng.uniform(0, 360),
                                   radius)],
                "capacity": None, "open_referrals": 0, "won": rng.randint(0, 8),
                "failed": rng.randint(0, 4), "group": None,
            })
            next_id[0] += 1
            next_id[1] += 1
    return firms


def special_firms(next_id: list[int]) -> list[dict]:
    """The firms of issue 12's examples, placed by hand."""

    def firm(name, trades, skills, description, offices, **extra):
        record = {"id": next_id[0], "name": name, "kind": extra.pop("kind", "partner"),
                  "trades": trades, "skills": skills, "description": description,
                  "offices": [], "capacity": None, "open_referrals": 0, "won": 2, "failed": 1,
                  "group": None, **extra}
        for city, km, bearing, radius in offices:
            record["offices"].append(office(next_id[1], city, km, bearing, radius))
            next_id[1] += 1
        next_id[0] += 1
        return record

    return [
        # issue 12: Osaka's anodising firm, 0 km from the client, found at #9
        firm("Naniwa Alumite", ["anodizing"], ["Anodising"],
             "Anodising of aluminium parts. アルマイト処理。", [("Osaka", 0.3, 90, 100)]),
        # issue 12: a Taichung studio (5 km) and a Tainan works (300 km)
        firm("Studio and Works Steel", ["welding", "sheet-metal"],
             ["TIG welding", "Sheet metal fabrication"],
             "Design studio in Taichung; welding and sheet metal works in Tainan. 焊接、鈑金。",
             [("Taichung", 1.0, 0, 5), ("Tainan", 2.0, 0, 300)]),
        # issue 12: a CNC and welding shop 1 km from a Taichung client asking for tax advice
        firm("Taichung Quick CNC", ["cnc-machining", "welding"], ["CNC machining", "Welding"],
             "CNC machining and welding. Small batches welcome. We export to Europe. CNC加工。",
             [("Taichung", 1.0, 200, 50)]),
        # issue 12: a die-caster 1.7 km from a Kaohsiung client asking for anodising
        firm("Kaohsiung Die Cast", ["die-casting"], ["Aluminium die casting"],
             "Aluminium die casting of bicycle parts. 鋁壓鑄、自行車零件。",
             [("Kaohsiung", 1.7, 45, 100)]),
        firm("Southern Hard Anodising", ["anodizing"], ["Hard anodizing"],
             "Hard anodising of aluminium. 硬質陽極處理。", [("Kaohsiung", 18.0, 0, 100)]),
        # issue 12: one word of profile against a full one, same tags and place
        firm("Machining Only", ["cnc-machining", "anodizing"], ["CNC machining", "Anodizing"],
             "machining",
             [("Kaohsiung", 5.0, 270, 100)]),
        firm("Full Profile Machining", ["cnc-machining", "anodizing"],
             ["CNC machining", "Anodizing"],
             "5-axis CNC machining of aluminium housings and brackets, hard anodising in house, "
             "2000 pieces a month, ISO 9001. 五軸加工、陽極處理。", [("Kaohsiung", 5.0, 270, 100)]),
        # capacity: the nearest anodizer to a Kaohsiung client is full
        firm("Full House Anodizing", ["anodizing"], ["Anodizing"],
             "Anodizing of aluminium. 陽極處理。", [("Kaohsiung", 0.5, 180, 100)],
             capacity=2, open_referrals=2),
        # track record: two Hsinchu PCB assemblers; the nearer has never converted a referral
        firm("Hsinchu SMT Never", ["pcb-assembly"], ["PCB assembly"],
             "PCB assembly, SMT. 電路板組裝。", [("Hsinchu", 1.0, 0, 100)], won=0, failed=12),
        firm("Hsinchu SMT Proven", ["pcb-assembly"], ["PCB assembly"],
             "PCB assembly, SMT. 電路板組裝。", [("Hsinchu", 12.0, 90, 100)], won=11, failed=1),
        # Osaka firm doing both machining and anodizing
        firm("Osaka Machining and Alumite", ["cnc-machining", "anodizing"],
             ["CNC machining", "Anodizing"],
             "CNC machining and anodizing of aluminium parts. CNC加工・アルマイト処理。",
             [("Osaka", 6.0, 30, 80)]),
        # groups (pending that part): an affiliate translation firm in the Formosa group
        firm("Formosa Language Services", ["translation"], ["Translation"],
             "Translation and interpreting. 翻譯、口譯。", [("Taipei", 25.0, 200, 100)],
             kind="affiliate", group="Formosa Group"),
        firm("Formosa Trading", ["customs-logistics"], ["Freight forwarding"],
             "Freight forwarding. 貨運承攬。", [("Taipei", 3.0, 0, 100)], kind="affiliate",
             group="Formosa Group"),
    ]


# Each need: a place (city, km and bearing from its centre), what the person typed (skills
# and/or description), the trades it means (`asks`: a firm must do all of them to be a right
# answer) and the trades a person would accept as related, plus what it covers (`covers`) and,
# for cases that need the aliases or groups part, `pending`.
NEEDS: list[dict] = [
    # spelling variants of tags
    {"at": ("Osaka", 0.5, 0), "skills": ["anodizing"], "asks": ["anodizing"], "covers": "variant",
     "note": "issue 12: Osaka's anodising firm must not sit behind Taiwanese anodizers"},
    {"at": ("Taichung", 2, 90), "skills": ["anodising"], "asks": ["anodizing"], "covers": "variant",
     "note": "issue 12: a Taichung client asking 'anodising' got the Osaka firm first"},
    {"at": ("Kaohsiung", 3, 0), "skills": ["Anodized finishes"], "asks": ["anodizing"],
     "covers": "alias", "note": "'anodized finishes' names anodizing in other words, not a "
     "spelling of it: head office merged the tag 'anodised finishes' into anodizing"},
    {"at": ("Tainan", 2, 45), "skills": ["powder coatings"], "asks": ["powder-coating"],
     "covers": "variant"},
    {"at": ("Nagoya", 3, 0), "skills": ["injection molding"], "asks": ["injection-moulding"],
     "covers": "variant"},
    {"at": ("Tokyo", 4, 90), "skills": ["translations"], "asks": ["translation"],
     "covers": "variant"},
    {"at": ("Kobe", 2, 0), "skills": ["Localization"], "asks": ["translation"],
     "covers": "variant"},
    {"at": ("Hsinchu", 2, 180), "skills": ["PCB assemblies"], "asks": ["pcb-assembly"],
     "covers": "variant"},
    {"at": ("Taoyuan", 3, 0), "skills": ["CNC-machined parts"], "asks": ["cnc-machining"],
     "covers": "variant"},
    {"at": ("Fukuoka", 2, 270), "skills": ["welded assembly"], "asks": ["welding"],
     "covers": "variant"},
    {"at": ("Busan", 3, 0), "skills": ["die-casting"], "asks": ["die-casting"],
     "covers": "variant"},
    {"at": ("Bangkok", 5, 0), "skills": ["heat treatments"], "asks": ["heat-treatment"],
     "covers": "variant"},
    {"at": ("Ho Chi Minh City", 4, 0), "skills": ["wire harness"], "asks": ["wire-harness"],
     "covers": "variant"},
    {"at": ("Stuttgart", 3, 0), "skills": ["mould making"], "asks": ["mould-making"],
     "covers": "variant"},
    {"at": ("Hamamatsu", 2, 0), "skills": ["mold-making"], "asks": ["mould-making"],
     "covers": "variant"},
    {"at": ("Kaohsiung", 4, 90), "skills": ["electroplating", "zinc-plating"],
     "asks": ["electroplating"], "covers": "variant"},
    {"at": ("Taichung", 3, 180), "skills": ["sheet metal fabrication", "laser cutting"],
     "asks": ["sheet-metal"], "covers": "variant"},
    {"at": ("Osaka", 3, 180), "skills": ["Anodizing", "CNC Machining"],
     "asks": ["anodizing", "cnc-machining"], "covers": "variant"},
    # plain-language needs in English
    {"at": ("Taichung", 1, 0), "description": "tax advice for a small exporter",
     "asks": ["tax-accounting"], "covers": "plain-en",
     "note": "issue 12: #1 was a CNC and welding shop 1 km away"},
    {"at": ("Kaohsiung", 0.5, 0), "description": "aluminium anodising for bicycle parts",
     "asks": ["anodizing"], "covers": "plain-en",
     "note": "issue 12: a die-caster 1.7 km away was #1, the hard anodiser #8"},
    {"at": ("Kaohsiung", 6, 180), "description": "hard anodised coating on aluminium housings",
     "asks": ["anodizing"], "covers": "plain-en"},
    {"at": ("Taipei", 2, 0),
     "description": "we need someone to check a supply contract before we sign it",
     "asks": ["legal"], "covers": "plain-en"},
    {"at": ("Tokyo", 3, 0), "description": "file a patent for our new sensor",
     "asks": ["patents"], "covers": "plain-en"},
    {"at": ("Hsinchu", 3, 0),
     "description": "translate our product manual from English into Japanese",
     "asks": ["translation"], "covers": "plain-en"},
    {"at": ("Tainan", 4, 0), "description": "zinc plating of steel bolts",
     "asks": ["electroplating"], "covers": "plain-en"},
    {"at": ("Osaka", 5, 90), "description": "plastic housings, injection moulded, 5000 pieces",
     "asks": ["injection-moulding"], "covers": "plain-en"},
    {"at": ("Nagoya", 4, 270), "description": "vacuum hardening of tool steel punches",
     "asks": ["heat-treatment"], "covers": "plain-en"},
    {"at": ("Taoyuan", 2, 90), "description": "ship a container to Germany and clear customs",
     "asks": ["customs-logistics"], "covers": "plain-en"},
    {"at": ("Taichung", 4, 270), "description": "3D printed prototype before we pay for tooling",
     "asks": ["3d-printing"], "covers": "plain-en"},
    {"at": ("Kaohsiung", 2, 270), "description": "laser cutting and bending of stainless sheet",
     "asks": ["sheet-metal"], "covers": "plain-en"},
    {"at": ("Fukuoka", 3, 0), "description": "recruit two engineers for our new plant",
     "asks": ["recruitment"], "covers": "plain-en"},
    {"at": ("Busan", 2, 90), "description": "aluminium die cast gearbox housing",
     "asks": ["die-casting"], "covers": "plain-en"},
    {"at": ("Bangkok", 3, 90), "description": "salt spray test for our coated parts",
     "asks": ["testing-lab"], "covers": "plain-en"},
    {"at": ("Ho Chi Minh City", 2, 90), "description": "cable assemblies for washing machines",
     "asks": ["wire-harness"], "covers": "plain-en"},
    {"at": ("Seoul", 3, 0), "description": "marketing campaign for our stand at a trade fair",
     "asks": ["marketing"], "covers": "plain-en"},
    {"at": ("Hanoi", 3, 0), "description": "build a website with an online shop",
     "asks": ["it-services"], "covers": "plain-en"},
    {"at": ("Stuttgart", 5, 90), "description": "industrial design of a new cordless power tool",
     "asks": ["industrial-design"], "covers": "plain-en"},
    {"at": ("Taipei", 4, 180), "description": "printed boxes for our tea exports",
     "asks": ["packaging"], "covers": "plain-en"},
    {"at": ("Tainan", 3, 270), "description": "TIG welding of aluminium frames",
     "asks": ["welding"], "covers": "plain-en"},
    {"at": ("Hamamatsu", 3, 90), "description": "5-axis machining of titanium parts",
     "asks": ["cnc-machining"], "covers": "plain-en"},
    {"at": ("Kyoto", 2, 0), "description": "bookkeeping and tax returns for a small company",
     "asks": ["tax-accounting"], "covers": "plain-en"},
    {"at": ("Kobe", 3, 90), "description": "freight forwarding from Japan to Vietnam",
     "asks": ["customs-logistics"], "covers": "plain-en"},
    # plain-language needs in Chinese (Taiwan) and Japanese
    {"at": ("Taichung", 2, 0), "description": "鋁合金陽極處理", "asks": ["anodizing"],
     "covers": "plain-zh"},
    {"at": ("Kaohsiung", 2, 0), "description": "需要稅務諮詢與記帳服務", "asks": ["tax-accounting"],
     "covers": "plain-zh"},
    {"at": ("Tainan", 2, 180), "description": "塑膠射出成型，小量生產",
     "asks": ["injection-moulding"], "covers": "plain-zh"},
    {"at": ("Taipei", 3, 90), "description": "合約審閱與公司法諮詢", "asks": ["legal"],
     "covers": "plain-zh"},
    {"at": ("Hsinchu", 4, 270), "description": "電路板SMT組裝", "asks": ["pcb-assembly"],
     "covers": "plain-zh"},
    {"at": ("Taoyuan", 4, 180), "description": "報關與海運物流", "asks": ["customs-logistics"],
     "covers": "plain-zh"},
    {"at": ("Changhua", 2, 0), "description": "粉體塗裝", "asks": ["powder-coating"],
     "covers": "plain-zh"},
    {"at": ("Taichung", 5, 45), "description": "CNC精密加工 鋁件", "asks": ["cnc-machining"],
     "covers": "plain-zh"},
    {"at": ("Osaka", 1, 270), "description": "アルミのアルマイト処理をお願いしたい",
     "asks": ["anodizing"], "covers": "plain-ja"},
    {"at": ("Tokyo", 2, 180), "description": "特許出願の相談", "asks": ["patents"],
     "covers": "plain-ja"},
    {"at": ("Nagoya", 2, 90), "description": "真空焼入れの熱処理", "asks": ["heat-treatment"],
     "covers": "plain-ja"},
    {"at": ("Fukuoka", 4, 90), "description": "税理士を探しています", "asks": ["tax-accounting"],
     "covers": "plain-ja"},
    {"at": ("Hamamatsu", 4, 180), "description": "プラスチック射出成形の試作",
     "asks": ["injection-moulding"], "covers": "plain-ja"},
    {"at": ("Kobe", 1, 180), "description": "英語への翻訳と通訳", "asks": ["translation"],
     "covers": "plain-ja"},
    {"at": ("Kyoto", 3, 90), "description": "ワイヤーハーネス加工", "asks": ["wire-harness"],
     "covers": "plain-ja"},
    # offices with different radii
    {"at": ("Taichung", 30, 0), "skills": ["welding"], "asks": ["welding"], "covers": "offices",
     "note": "issue 12: 30 km north of Taichung; the Tainan works (300 km) serves it"},
    {"at": ("Tainan", 55, 20), "skills": ["heat treatment"], "asks": ["heat-treatment"],
     "covers": "offices"},
    {"at": ("Kaohsiung", 20, 80), "skills": ["anodizing"], "asks": ["anodizing"],
     "covers": "offices"},
    # capacity and track record
    {"at": ("Kaohsiung", 0.6, 180), "skills": ["anodizing"], "asks": ["anodizing"],
     "covers": "capacity", "note": "the nearest anodizer (0.1 km) is full"},
    {"at": ("Hsinchu", 0.5, 0), "skills": ["PCB assembly"], "asks": ["pcb-assembly"],
     "covers": "track-record", "note": "the nearest assembler has converted 0 of 12"},
    {"at": ("Kaohsiung", 5, 270), "skills": ["CNC machining"],
     "description": "5-axis machining of aluminium housings, 2000 pcs a month",
     "asks": ["cnc-machining"], "covers": "length",
     "note": "issue 12: a one-word profile outranked a full one"},
    # head office's aliases (VOCABULARY)
    {"at": ("Taichung", 3, 0), "skills": ["cnc milling"], "asks": ["cnc-machining"],
     "covers": "alias", "note": "alias 'cnc milling' -> cnc-machining"},
    {"at": ("Osaka", 2, 0), "skills": ["alumite"], "asks": ["anodizing"], "covers": "alias",
     "note": "alias 'alumite' (Japanese trade name) -> anodizing"},
    {"at": ("Kyoto", 2, 180), "skills": ["アルマイト"], "asks": ["anodizing"], "covers": "alias",
     "note": "alias in Japanese -> anodizing; no firm has a Japanese tag"},
    {"at": ("Changhua", 3, 90), "skills": ["陽極處理"], "asks": ["anodizing"], "covers": "alias",
     "note": "alias in Chinese -> anodizing; no firm has a Chinese tag"},
    {"at": ("Hsinchu", 6, 0), "skills": ["SMT"], "asks": ["pcb-assembly"], "covers": "alias",
     "note": "alias 'SMT' -> pcb-assembly (surface-mount assembly of boards)"},
    # pending: groups come with another part
    {"at": ("Taipei", 20, 200), "skills": ["translation"], "asks": ["translation"],
     "covers": "group", "prefer_group": "Formosa Group",
     "pending": "groups: prefer_group should put Formosa Language Services first"},
]

# Head office's vocabulary (SPEC section 8), as POST /skills/aliases and /skills/merge leave it:
# alias slug -> skill slug, and why. A merged tag is re-pointed in every firm's profile and
# stays as an alias; a pure alias is a name no firm uses. Written from the trades' names, not
# from the rankings: other names of a trade that a client types.
VOCABULARY: list[tuple[str, str, str]] = [
    ("anodised-finishes", "anodizing", "merged: a firm's way of saying it anodizes"),
    ("cnc-milling", "cnc-machining", "alias: the SPEC's example, milling on CNC machines"),
    ("alumite", "anodizing", "alias: the Japanese trade name of anodizing (アルマイト)"),
    ("アルマイト", "anodizing", "alias: anodizing in Japanese"),
    ("陽極處理", "anodizing", "alias: anodizing in Chinese (Taiwan)"),
    ("smt", "pcb-assembly", "alias: surface-mount technology, how boards are assembled"),
    # each trade's name in Chinese (Taiwan) and Japanese, as the network's clients write it
    *((name, skill, "alias: the trade's name in Chinese or Japanese") for skill, names in (
        ("electroplating", ("電鍍", "めっき")), ("powder-coating", ("粉體塗裝", "粉体塗装")),
        ("cnc-machining", ("cnc精密加工",)), ("welding", ("焊接", "溶接")),
        ("sheet-metal-fabrication", ("鈑金加工", "板金加工")),
        ("die-casting", ("壓鑄", "ダイカスト")), ("injection-moulding", ("射出成型", "射出成形")),
        ("mould-making", ("模具製作", "金型製作")), ("3d-printing", ("3d列印", "3dプリント")),
        ("pcb-assembly", ("電路板組裝", "基板実装")),
        ("wire-harness", ("線束加工", "ワイヤーハーネス")),
        ("heat-treatment", ("熱處理", "熱処理")), ("materials-testing", ("材料檢測", "材料試験")),
        ("tax-advice", ("稅務諮詢", "税理士")), ("legal-services", ("律師事務所", "法律事務所")),
        ("patent-filing", ("專利申請", "特許出願")), ("translation", ("翻譯", "翻訳")),
        ("customs-brokerage", ("報關", "通関")),
        ("software-development", ("軟體開發", "ソフトウェア開発")),
        ("industrial-design", ("工業設計", "工業デザイン")),
        ("packaging-printing", ("包裝印刷", "パッケージ印刷")),
        ("recruitment", ("人才招募", "人材紹介")),
        ("marketing", ("數位行銷", "デジタルマーケティング")),
        ("bicycle-components", ("自行車零件", "自転車部品"))) for name in names),
]

# grade 2 needs an office within this factor (plus the slack) of the nearest right answer
NEAR_FACTOR, NEAR_SLACK_KM = 2.0, 20.0
# a firm with at least this many failed referrals per won one (plus one) has a poor record
POOR_RECORD = 3


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * 6371.0088 * math.asin(math.sqrt(min(1.0, h)))


def judge(need: dict, firms: list[dict]) -> tuple[dict[int, int], dict[int, str]]:
    """Grade the firms for a need by the written rule; return grades and why, per firm id.

    2, a right answer: the firm does every trade asked, one of its offices reaches the client
       within that office's own radius, it has free capacity, its record is not poor, and that
       office is not much farther than the nearest right answer's.
    1, acceptable: does every trade asked and serves the client, but is far, or has a poor
       record; or does a trade asked and is within 300 km.
    0: anything else (a full firm cannot take the referral, whatever it does).
    """
    client = need["location"]["latitude"], need["location"]["longitude"]
    asks = set(need["asks"])
    grades: dict[int, int] = {}
    why: dict[int, str] = {}
    serving: dict[int, tuple[float, dict]] = {}
    for firm in firms:
        full = firm["capacity"] is not None and firm["open_referrals"] >= firm["capacity"]
        measured = [(distance_km(client, (o["latitude"], o["longitude"])), o)
                    for o in firm["offices"]]
        serves = [(d, o) for d, o in measured if d <= o["service_radius_km"]]
        nearest = min(d for d, _ in measured)
        trades = set(firm["trades"])
        if full or not trades & asks:
            continue
        if asks <= trades and serves:
            serving[firm["id"]] = min(serves, key=lambda pair: pair[0])
        elif nearest <= 300:
            grades[firm["id"]] = 1
            done = ", ".join(sorted(trades & asks))
            why[firm["id"]] = (f"does {done} but not all asked ({', '.join(sorted(asks))})"
                               if not asks <= trades else
                               f"does {', '.join(sorted(asks))}; nearest office {nearest:.0f} km "
                               f"away, beyond its radius")
    if serving:
        best = min(d for d, _ in serving.values())
        for firm_id, (d, o) in serving.items():
            firm = next(f for f in firms if f["id"] == firm_id)
            poor = firm["failed"] >= POOR_RECORD * (firm["won"] + 1)
            close = d <= NEAR_FACTOR * best + NEAR_SLACK_KM
            grades[firm_id] = 2 if close and not poor else 1
            reason = (f"does {', '.join(sorted(asks))}; its {o['label']} office {d:.1f} km away "
                      f"serves {o['service_radius_km']:.0f} km")
            if poor:
                reason += f"; but {firm['won']} won / {firm['failed']} lost: poor record"
            elif not close:
                reason += f"; farther than the nearest right answer ({best:.1f} km)"
            why[firm_id] = reason
    return grades, why


def build() -> tuple[list[dict], list[dict]]:
    """Return the firms and the judged needs."""
    rng = random.Random(SEED)
    next_id = [1, 1]
    firms = special_firms(next_id) + drawn_firms(rng, next_id)
    firms += local_firms(random.Random(SEED + 1), next_id)
    needs = []
    for number, spec in enumerate(NEEDS, 1):
        city, km, bearing = spec["at"]
        lat, lon = near(city, km, bearing)
        request = {"location": {"latitude": lat, "longitude": lon}, "limit": 5}
        if spec.get("skills"):
            request["skills"] = spec["skills"]
        if spec.get("description"):
            request["description"] = spec["description"]
        related = sorted({t for a in spec["asks"] for t in TRADES[a]["related"]}
                         - set(spec["asks"]))
        need = {"id": number, "place": f"{km} km from {city} ({CITIES[city][2]})",
                "request": request, "asks": spec["asks"], "related": related,
                "covers": spec["covers"], "note": spec.get("note", ""),
                "pending": spec.get("pending"), "prefer_group": spec.get("prefer_group")}
        need["location"] = request["location"]
        grades, why = judge(need, firms)
        del need["location"]
        need["relevant"] = {str(k): grades[k] for k in sorted(grades)}
        need["why"] = {str(k): why[k] for k in sorted(why)}
        needs.append(need)
    return firms, needs


def main() -> None:
    firms, needs = build()
    with open(HERE / "firms.jsonl", "w", encoding="utf-8") as out:
        for firm in firms:
            out.write(json.dumps(firm, ensure_ascii=False) + "\n")
    with open(HERE / "needs.jsonl", "w", encoding="utf-8") as out:
        for need in needs:
            out.write(json.dumps(need, ensure_ascii=False) + "\n")
    with open(HERE / "vocabulary.jsonl", "w", encoding="utf-8") as out:
        for alias, skill, why in VOCABULARY:
            out.write(json.dumps({"alias": alias, "skill": skill, "why": why},
                                 ensure_ascii=False) + "\n")
    right = sum(1 for n in needs if 2 in n["relevant"].values())
    print(f"{len(firms)} firms, {len(needs)} needs ({right} with a right answer) -> {HERE}")


if __name__ == "__main__":
    main()
