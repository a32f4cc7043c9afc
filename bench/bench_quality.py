"""Ranking quality on the labelled evaluation set (bench/data/match_eval), before and after.

    python bench/bench_quality.py                        # the start commit of issue 12 vs this tree
    python bench/bench_quality.py --before 57dc11c       # another commit as "before"
    python bench/bench_quality.py --misses               # list the needs the "after" code misses

Each version ranks in its own subprocess (`--rank ROOT`), importing `scoring` from ROOT: the
"before" commit is checked out into a temporary `git worktree`, removed at the end. Each need
is asked of `scoring.MatchIndex` as POST /match would (skills slugified, limit 5, the
deployment's default weights and relevance floor). Then, against the hand-made judgements:

- NDCG@5 (gain 2^grade - 1: 3 for a right answer, 1 for an acceptable one) and hit@1 (the first
  firm is a right answer), over the needs that have a right answer;
- the share of top-5 results with no skill relation: firms none of whose trades is one the
  need asks for or one judged related to it, over all needs (an empty list counts nothing);
- the same per kind of case (spelling variant, plain English, Chinese, Japanese, offices, ...).

Groups: needs_groups.jsonl holds the group cases (replacing a need of needs.jsonl of the same
id), each judged by the rule in its `why` and naming its referrer (left out, as POST /match
does) and the referrer's group, asked with prefer_group or same_group_only weighed by
MATCH_WEIGHT_GROUP's default; groups.jsonl adds firms to groups.

Needs marked `pending` (groups: another part of issue 12) are scored apart. Code that has head
office's aliases (scoring.SkillAliases) ranks with the vocabulary of vocabulary.jsonl applied as
the service applies it: merged tags re-pointed in the firms, needs' aliases resolved.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data" / "match_eval"
# the last commit before issue 12's matching changes
START_COMMIT = "c5702ec"
TARGET_HIT_AT_1 = 0.9
# the deployment's default group weight (referral_service/config.py), with prefer_group
MATCH_WEIGHT_GROUP = 0.04


def load(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def rank_all(root: str) -> None:
    """Print, as JSON, the ranked firm ids of every need with the scoring code under root."""
    sys.path.insert(0, root)
    from scoring import Firm, MatchIndex, Need, Office, slugify_skill

    firms = []
    for record in load(DATA / "firms.jsonl"):
        offices = tuple(Office(o["id"], o["latitude"], o["longitude"], o["service_radius_km"])
                        for o in record["offices"])
        firms.append(Firm(
            id=record["id"], name=record["name"], kind=record["kind"],
            skills=tuple(dict.fromkeys(map(slugify_skill, record["skills"]))),
            description=record["description"], offices=offices, capacity=record["capacity"],
            open_referrals=record["open_referrals"], won=record["won"], failed=record["failed"]))
    import scoring

    aliases = None
    if hasattr(scoring, "SkillAliases"):  # code with head office's aliases and merges
        aliases = scoring.SkillAliases.of({row["alias"]: row["skill"]
                                           for row in load(DATA / "vocabulary.jsonl")})
        # what POST /skills/merge did to the firms' tags
        firms = [replace(firm, skills=tuple(dict.fromkeys(map(aliases.skill_of, firm.skills))))
                 for firm in firms]
    firms, group_ids = _grouped(firms)
    index = MatchIndex().fit(firms)
    rankings = {}
    for need in load_needs():
        request = need["request"]
        query = Need(latitude=request["location"]["latitude"],
                     longitude=request["location"]["longitude"],
                     skills=tuple(dict.fromkeys(map(slugify_skill, request.get("skills", [])))),
                     description=request.get("description", ""), limit=request["limit"])
        if aliases is not None:  # as POST /match resolves them
            query = scoring.resolve_aliases(query, aliases)
        query, weights = _group_request(query, need, group_ids)
        rankings[need["id"]] = [c.organization_id for c in index.query(query, weights)]
    json.dump(rankings, sys.stdout)


def load_needs() -> list[dict]:
    """The needs of needs.jsonl, those of needs_groups.jsonl replacing any of the same id."""
    needs = {need["id"]: need for need in load(DATA / "needs.jsonl")}
    needs.update({need["id"]: need for need in load(DATA / "needs_groups.jsonl")})
    return list(needs.values())


def _grouped(firms: list) -> tuple[list, dict[str, int]]:
    """The firms with their groups (firms.jsonl's, then groups.jsonl's), and the group ids by
    name; code without groups (scoring.Firm.group_id) gets the firms as they are."""
    import dataclasses

    from scoring import Firm

    if "group_id" not in Firm.__dataclass_fields__:
        return firms, {}
    named = {record["id"]: record.get("group") for record in load(DATA / "firms.jsonl")}
    named.update({row["firm_id"]: row["group"] for row in load(DATA / "groups.jsonl")})
    ids = {name: number for number, name in enumerate(sorted(set(filter(None,
                                                                       named.values()))), 1)}
    return [dataclasses.replace(firm, group_id=ids.get(named.get(firm.id))) for firm in firms], ids


def _group_request(query, need: dict, group_ids: dict[str, int]):
    """The need as POST /match asks it: the referrer left out and, with groups, prefer_group
    or same_group_only for the referrer's group weighed by MATCH_WEIGHT_GROUP's default."""
    import dataclasses

    import scoring

    weights = scoring.DEFAULT_WEIGHTS
    if need.get("referrer_id"):
        query = dataclasses.replace(query, exclude_ids=frozenset({need["referrer_id"]}))
    if need.get("prefer_group") and group_ids:
        same = bool(need.get("same_group_only"))
        query = dataclasses.replace(query, group_id=group_ids[need["prefer_group"]],
                                    prefer_group=not same, same_group_only=same)
        weights = dataclasses.replace(weights, group=MATCH_WEIGHT_GROUP)
    return query, weights


def rankings_of(root: Path) -> dict[int, list[int]]:
    """Rank every need with the code under root, in a subprocess."""
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--rank", str(root)],
                          cwd=root, capture_output=True, text=True, check=True)
    return {int(k): v for k, v in json.loads(done.stdout).items()}


def ndcg_at_5(ranked: list[int], grades: dict[int, int]) -> float:
    def dcg(gains: list[int]) -> float:
        return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(gains[:5]))

    ideal = dcg(sorted(grades.values(), reverse=True))
    return dcg([grades.get(firm_id, 0) for firm_id in ranked]) / ideal if ideal else 0.0


def measure(needs: list[dict], firms: dict[int, dict], rankings: dict[int, list[int]]) -> dict:
    """Return NDCG@5, hit@1 and the unrelated share, overall and per kind of case."""
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for need in needs:
        ranked = rankings[need["id"]][:5]
        grades = {int(k): v for k, v in need["relevant"].items()}
        accepted = set(need["asks"]) | set(need["related"])
        unrelated = [not set(firms[f]["trades"]) & accepted for f in ranked]
        for key in ("all", need["covers"]):
            bucket = groups[key]
            bucket["results"].append(len(ranked))
            bucket["unrelated"].append(sum(unrelated))
            if 2 in grades.values():
                bucket["ndcg"].append(ndcg_at_5(ranked, grades))
                bucket["hit"].append(float(bool(ranked) and grades.get(ranked[0]) == 2))
    table = {}
    for key, bucket in groups.items():
        results = sum(bucket["results"])
        table[key] = {
            "needs": len(bucket["results"]), "judged": len(bucket["hit"]),
            "ndcg": sum(bucket["ndcg"]) / len(bucket["ndcg"]) if bucket["ndcg"] else None,
            "hit": sum(bucket["hit"]) / len(bucket["hit"]) if bucket["hit"] else None,
            "unrelated": sum(bucket["unrelated"]) / results if results else 0.0,
            "unrelated_count": sum(bucket["unrelated"]), "results": results,
        }
    return table


def show(label: str, before: dict, after: dict) -> None:
    print(f"\n{label}")
    if "all" not in after:
        print("(none)")
        return
    print(f"{'cases':<14}{'needs':>6}{'judged':>7}   {'NDCG@5':>15}   {'hit@1':>15}   "
          f"{'top-5 unrelated':>27}")

    def figure(value: float | None) -> str:
        return "   -" if value is None else f"{value:5.3f}"

    order = ["all"] + sorted(k for k in after if k != "all")
    for key in order:
        b, a = before[key], after[key]
        print(f"{key:<14}{a['needs']:>6}{a['judged']:>7}   {figure(b['ndcg'])} -> "
              f"{figure(a['ndcg'])}   {figure(b['hit'])} -> {figure(a['hit'])}   "
              f"{b['unrelated']:5.1%} ({b['unrelated_count']:>3}) -> {a['unrelated']:5.1%} "
              f"({a['unrelated_count']:>3})")


def misses(needs: list[dict], firms: dict[int, dict], rankings: dict[int, list[int]]) -> None:
    print("\nneeds whose first firm is not a right answer, or with unrelated firms (after):")
    for need in needs:
        ranked = rankings[need["id"]][:5]
        grades = {int(k): v for k, v in need["relevant"].items()}
        accepted = set(need["asks"]) | set(need["related"])
        bad = [f for f in ranked if not set(firms[f]["trades"]) & accepted]
        first_ok = bool(ranked) and grades.get(ranked[0]) == 2
        if (2 in grades.values() and not first_ok) or bad:
            text = need["request"].get("description") or need["request"].get("skills")
            first = firms[ranked[0]]["name"] if ranked else "(none)"
            print(f"  #{need['id']:<3} {need['covers']:<12} {text!s:<48.48} first: {first} "
                  f"(grade {grades.get(ranked[0], 0) if ranked else '-'}); "
                  f"unrelated: {[firms[f]['name'] for f in bad]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=START_COMMIT, help="commit of the 'before' code")
    parser.add_argument("--misses", action="store_true", help="list what the new code misses")
    parser.add_argument("--rank", metavar="ROOT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank:
        rank_all(args.rank)
        return
    needs = load_needs()
    firms = {f["id"]: f for f in load(DATA / "firms.jsonl")}
    countries = sorted({o["country"] for f in firms.values() for o in f["offices"]})
    print(f"== bench_quality: {len(firms)} firms ({', '.join(countries)}), {len(needs)} needs; "
          f"before = {args.before}, after = this tree ==")
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as folder:
        worktree = Path(folder) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(worktree), args.before],
                       cwd=ROOT, check=True, capture_output=True)
        try:
            before = rankings_of(worktree)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT,
                           check=True, capture_output=True)
    after = rankings_of(ROOT)
    current = [n for n in needs if not n.get("pending")]
    pending = [n for n in needs if n.get("pending")]
    table_after = measure(current, firms, after)
    show("needs of this part (before -> after)", measure(current, firms, before), table_after)
    show("pending: groups, another part (before -> after)",
         measure(pending, firms, before), measure(pending, firms, after))
    hit = table_after["all"]["hit"]
    unrelated = table_after["all"]["unrelated_count"]
    print(f"\ntarget: hit@1 >= {TARGET_HIT_AT_1}: {hit:.3f} "
          f"{'PASS' if hit >= TARGET_HIT_AT_1 else 'MISS'}; no top-5 result without skill "
          f"relation: {unrelated} {'PASS' if unrelated == 0 else 'MISS'}")
    if args.misses:
        misses(current, firms, after)


if __name__ == "__main__":
    main()
