"""find_or_create_many gives what find_or_create, called for each client in turn, gives."""

from __future__ import annotations

from sqlalchemy import select

from models import Client
from referral_service.db import session_scope
from referral_service.services import clients
from referral_service.services.places import ResolvedPlace

TAINAN = ResolvedPlace(latitude=22.99, longitude=120.21, city="Tainan", country="TW",
                       address=None)
STORED = [("Acme Ltd", None), ("Beta Works", "K-1"), ("Gamma", None)]
WANTED = [
    clients.Wanted("ACME"),                      # the stored name-only client
    clients.Wanted("Beta Works"),                # a name matching a client with a CRM id
    clients.Wanted("Someone Else", "k-1 "),      # the stored CRM id, another name
    clients.Wanted("New One"),                   # new ...
    clients.Wanted("NEW ONE Ltd."),              # ... and the same again in the same batch
    clients.Wanted("New Two", "K-2"),            # new with a CRM id ...
    clients.Wanted("Other Name", "k-2"),         # ... and that id again
    clients.Wanted("Delta"),                     # new, name-only ...
    clients.Wanted("Delta", "K-3"),              # ... then with a CRM id to record on it
    clients.Wanted("Gamma", None, TAINAN),       # a stored client given a place
    clients.Wanted("Epsilon", None, TAINAN),     # new with a place
]


def _run(app, one_by_one: bool):
    with session_scope(app) as session:
        for name, ref in STORED:
            clients.find_or_create(session=session, name=name, external_ref=ref)
        session.commit()
    with session_scope(app) as session:
        if one_by_one:
            found = [clients.find_or_create(session=session, name=item.name,
                                            external_ref=item.external_ref, place=item.place)
                     for item in WANTED]
        else:
            found = clients.find_or_create_many(session=session, wanted=WANTED)
        answer = [(client.id, created) for client, created in found]
        session.commit()
        rows = [(c.id, c.name, c.normalized_name, c.external_ref, c.external_ref_key, c.city)
                for c in session.scalars(select(Client).order_by(Client.id))]
    return answer, rows


def test_many_is_find_or_create_for_each_in_turn(app):
    from tests.conftest import _empty_tables

    one_by_one = _run(app, one_by_one=True)
    _empty_tables(app)
    assert _run(app, one_by_one=False) == one_by_one
    answer, rows = one_by_one
    # The shape of the answer, spelt out: who is whom, and what was new.
    ids = [client_id for client_id, _ in answer]
    assert ids[0] == 1 and ids[1] == 2 and ids[2] == 2
    assert ids[3] == ids[4] and ids[5] == ids[6] and ids[7] == ids[8]
    assert [created for _, created in answer][3:6] == [True, False, True]
    assert {row[4] for row in rows} >= {"k-1", "k-2", "k-3"}
    assert [row[5] for row in rows if row[1] in ("Gamma", "Epsilon")] == ["Tainan", "Tainan"]


def test_many_new_clients_are_stored_as_given(app):
    """The new clients' one INSERT (one JSON document on PostgreSQL) stores every value as
    given: text beyond ASCII, quotes and backslashes, places with whole-number coordinates,
    and none at all."""
    place = ResolvedPlace(latitude=25, longitude=121.5, city='Taipei "Da\\an"', country="TW",
                          address=None)
    wanted = [clients.Wanted("株式会社 Ünïcode \"Q\" \\ Ltd", "Ref-Ü", place),
              clients.Wanted("Plain", None, None)]
    with session_scope(app) as session:
        found = clients.find_or_create_many(session=session, wanted=wanted)
        session.commit()
        assert [created for _, created in found] == [True, True]
        ids = [client.id for client, _ in found]
        session.expunge_all()
        stored = [session.get(Client, client_id) for client_id in ids]
    assert [(c.name, c.external_ref, c.external_ref_key, c.latitude, c.longitude, c.city,
             c.country, c.address) for c in stored] == [
        ("株式会社 Ünïcode \"Q\" \\ Ltd", "Ref-Ü", "ref-ü", 25.0, 121.5, 'Taipei "Da\\an"', "TW",
         None),
        ("Plain", None, None, None, None, None, None, None)]
    assert all(c.created_at.tzinfo is not None for c in stored)
