"""An alias declared while a profile write takes that very slug (SPEC section 8: an alias is
never a skill some firm offers), two transactions on PostgreSQL held open at the chosen moment.
The skill vocabulary's gate (adapters/sql.gate) makes the later one wait for the earlier and
then see its work; SQLite runs one write transaction at a time anyway."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from models import OrganizationSkill, SkillAlias
from referral_service.db import new_session
from referral_service.services import organizations, skills, unit_of_work
from referral_service.services.auth import Principal
from referral_service.services.errors import Conflict

HEAD_OFFICE = Principal(name="key:admin", role="admin")
BLOCKED_SECONDS = 1.0


@pytest.fixture(autouse=True)
def postgresql_only(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite runs one write transaction at a time")


def _held_open(app, work):
    """Run `work` in its own unit of work, kept open until the returned event is set."""
    release, done, failures = threading.Event(), threading.Event(), []

    def run():
        session = new_session(app, write=True)
        try:
            unit_of_work.run(session, lambda: (work(session), done.set(), release.wait(30)))
        except Exception as error:  # noqa: BLE001 -- reported by the test
            failures.append(error)
            done.set()
        finally:
            session.close()

    thread = threading.Thread(target=run)
    thread.start()
    assert done.wait(30)
    return release, thread, failures


def _in_thread(app, work):
    """Start `work` in its own unit of work in a thread; return the thread and its outcome."""
    outcome: dict = {}

    def run():
        session = new_session(app, write=True)
        try:
            outcome["value"] = unit_of_work.run(session, lambda: work(session))
        except Exception as error:  # noqa: BLE001 -- reported by the test
            outcome["error"] = error
        finally:
            session.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _the_second_waits(app, first, second):
    """Hold `first` open, start `second`, check that it waits for `first`, then let `first`
    commit; return first's failures and second's outcome."""
    release, first_thread, failures = _held_open(app, first)
    thread, outcome = _in_thread(app, second)
    thread.join(BLOCKED_SECONDS)
    assert thread.is_alive(), "the second transaction did not wait for the first"
    release.set()
    first_thread.join(30)
    thread.join(30)
    return failures, outcome


def _profile_taking_hard_coat(firm_id):
    return lambda s: organizations.update(
        session=s, organization_id=firm_id, data={"skills": ["CNC Machining", "Hard coat"]},
        actor=HEAD_OFFICE, geocoder=None)


def _tags(session, firm_id):
    session.expire_all()
    return set(session.scalars(select(OrganizationSkill.slug)
                               .where(OrganizationSkill.organization_id == firm_id)))


def test_a_profile_written_while_an_alias_is_declared_stores_the_skill_not_the_alias(
        app, make_org, session):
    make_org(name="Kept Anodizers", skills=["Anodizing"])
    firm = make_org(name="Racing Works", skills=["CNC Machining"])["id"]
    failures, outcome = _the_second_waits(
        app, lambda s: skills.create_alias(session=s, actor=HEAD_OFFICE, alias="hard-coat",
                                           skill="anodizing"),
        _profile_taking_hard_coat(firm))
    assert failures == [] and "error" not in outcome, (failures, outcome)
    assert _tags(session, firm) == {"cnc-machining", "anodizing"}
    assert "hard-coat" in set(session.scalars(select(SkillAlias.alias)))


def test_an_alias_declared_while_a_profile_takes_its_slug_is_refused(app, make_org, session):
    make_org(name="Kept Anodizers", skills=["Anodizing"])
    firm = make_org(name="Racing Works", skills=["CNC Machining"])["id"]
    failures, outcome = _the_second_waits(
        app, _profile_taking_hard_coat(firm),
        lambda s: skills.create_alias(session=s, actor=HEAD_OFFICE, alias="hard-coat",
                                      skill="anodizing"))
    assert failures == []
    assert isinstance(outcome.get("error"), Conflict), outcome
    assert _tags(session, firm) == {"cnc-machining", "hard-coat"}
    assert set(session.scalars(select(SkillAlias.alias))) == set()


def test_a_merge_moves_the_tags_a_profile_write_committed_while_it_waited(
        app, make_org, session):
    make_org(name="Kept Anodizers", skills=["Anodizing"])
    make_org(name="Old Tag Works", skills=["Hard coat"])
    firm = make_org(name="Racing Works", skills=["CNC Machining"])["id"]
    failures, outcome = _the_second_waits(
        app, _profile_taking_hard_coat(firm),
        lambda s: skills.merge(session=s, actor=HEAD_OFFICE, from_="hard-coat", into="anodizing"))
    assert failures == [] and "error" not in outcome, (failures, outcome)
    assert outcome["value"].organizations == 2
    assert _tags(session, firm) == {"cnc-machining", "anodizing"}
    assert set(session.scalars(select(OrganizationSkill.slug).distinct())) == {
        "anodizing", "cnc-machining"}
