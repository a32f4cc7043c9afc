"""Concurrent POSTs of one CRM id (or department name) through a real gunicorn server: one 201,
the others a 409 naming the winner, never a 500 (the unique constraints decide)."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from models import Department, Person
from tests.conftest import LiveServer
from tests.live.races import storm

pytestmark = pytest.mark.slow

ROUNDS = 10


@pytest.fixture(scope="module")
def server(database_url):
    live = LiveServer(database_url, workers=2)
    yield live
    live.stop()



def assert_one_winner(results: list[tuple[int, dict]]) -> None:
    assert Counter(status for status, _ in results) == {201: 1, 409: len(results) - 1}, results
    winner = next(body for status, body in results if status == 201)
    assert {body["existing_id"] for status, body in results if status == 409} == {winner["id"]}


@pytest.mark.parametrize("threads", [2, 8])
def test_concurrent_posts_of_one_external_ref_give_one_201_and_409s(
        server, admin_headers, make_org, session, threads):
    firm = make_org(name="Harbor Works")["id"]
    for round_ in range(ROUNDS):
        def send(http, index, round_=round_):
            # The same CRM id, spelt in another case by every other thread.
            ref = f"CRM-{round_}" if index % 2 else f" crm-{round_}"
            return http.post(server.url + "/api/v1/people", headers=admin_headers,
                             json={"organization_id": firm, "name": f"Twin {index}",
                                   "external_ref": ref})

        assert_one_winner(storm(threads, send))
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Person)) == ROUNDS


def test_concurrent_posts_of_one_department_name_give_one_201_and_409s(
        server, admin_headers, make_org, session):
    firm = make_org(name="Harbor Works")["id"]
    for round_ in range(ROUNDS):
        def send(http, _index, round_=round_):
            return http.post(server.url + "/api/v1/departments", headers=admin_headers,
                             json={"organization_id": firm, "name": f"Sales {round_}"})

        assert_one_winner(storm(4, send))
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Department)) == ROUNDS
