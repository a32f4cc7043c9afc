"""The fast paths: the only module with Core statements and dialect-specific SQL.

The rest of the service reaches the database through the ORM (session.get, select() of mapped
classes, the unit of work's flush). A statement goes here, instead, only where a benchmark
showed the ORM's per-row work to matter; each says what it saved. Only SQLite and PostgreSQL
are supported: no code for a database that nothing tests.

- `insert_rows`: the side rows of one change (history, audit entry, outbox event), one per
  table. PostgreSQL runs data-modifying WITH clauses as part of one statement, so three
  inserts cost one round trip instead of three (about a tenth of a referral's creation);
  SQLite has no such clauses and runs them one by one.
- `bulk_insert`: many rows of one table (imports): COPY on PostgreSQL, executemany on SQLite.
- `reserve_ids`: the ids a PostgreSQL table's sequence gives the next rows, in one query.
- `load_firms`: every firm as scoring's Firm, from plain DBAPI tuples (half the ORM's time).
- `plain_rows`, `dict_rows`: the KPI aggregates' rows, without the ORM's row handling.
- referrals and clients: the referral's INSERT, the receiver's capacity UPDATE, and the
  race-safe INSERT ... ON CONFLICT DO NOTHING of clients and idempotency keys.
- visits: the salesperson's row, and a visit's leads and new clients each in one INSERT of
  one JSON document on PostgreSQL (`_json_insert`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from operator import itemgetter
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    JSON,
    Connection,
    Insert,
    Integer,
    Select,
    Table,
    TextClause,
    Update,
    and_,
    bindparam,
    event,
    func,
    insert,
    inspect,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, configure_mappers, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from models import (
    Client,
    Group,
    IdempotencyRecord,
    Office,
    Organization,
    OrganizationSkill,
    OrganizationStats,
    Person,
    Referral,
    UTCDateTime,
)
from scoring import Firm
from scoring import Office as ScoringOffice

_T = TypeVar("_T")
# A row to insert: a mapped class (or its table) and the column values.
Row = tuple[type | Table, dict[str, Any]]

# One statement per shape (tables and columns), built once: values travel as parameters.
_COMBINED: dict[tuple[tuple[str, tuple[str, ...]], ...], Insert] = {}


def insert_rows(session: Session, rows: Sequence[Row]) -> Any:
    """Insert each (mapped class or table, values) row; return the last row's primary key.

    On PostgreSQL the WITH clauses run together, in no set order: two rows of one table may
    get their ids in either order, so give a table one row where that order matters.
    """
    rows = [(getattr(target, "__table__", target), values) for target, values in rows]
    *first, (last_table, last_values) = rows
    if not first or session.get_bind().dialect.name != "postgresql":
        for table, values in first:
            session.execute(insert(table), values)
        return session.execute(_returning_key(insert(last_table)), last_values).scalar_one()
    shape = tuple((table.name, tuple(sorted(values))) for table, values in rows)
    statement = _COMBINED.get(shape)
    if statement is None:
        statement = _COMBINED[shape] = _returning_key(_combined(rows))
    return session.execute(statement, {f"r{number}_{column}": value
                                       for number, (_table, values) in enumerate(rows)
                                       for column, value in values.items()}).scalar_one()


def _returning_key(statement: Insert) -> Insert:
    return statement.returning(*statement.table.primary_key.columns)


def _combined(rows: Sequence[Row]) -> Insert:
    """WITH r0 AS (INSERT ...), r1 AS (INSERT ...) INSERT ...: one statement for every row."""
    def parameterized(number: int, table: Table, values: dict[str, Any]) -> Insert:
        return insert(table).values({
            column: bindparam(f"r{number}_{column}", type_=table.c[column].type)
            for column in values})

    *first, (last_table, last_values) = rows
    statement = parameterized(len(first), last_table, last_values)
    for number, (table, values) in enumerate(first):
        statement = statement.add_cte(parameterized(number, table, values).cte(f"r{number}"))
    return statement


def bulk_insert(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows that all have the same keys: COPY on PostgreSQL, executemany elsewhere.

    psycopg's executemany sends one statement per row (about 30 us each, client side); COPY
    streams them. The values go through the columns' own bind processing (aware datetimes
    to UTC, JSON serialized) exactly as an INSERT would.
    """
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        connection.execute(table.insert(), rows)
        return
    dialect = connection.dialect
    columns = list(rows[0])
    # Each row's values taken at once (itemgetter), and only the columns whose type processes
    # its values touched, each processor run once for a value repeated row after row (the
    # batch's timestamps): a 100k-firm import's COPYs cost 3.0 s of client CPU this way
    # against 3.9 s for a list built value by value (its 1M skill rows 0.5 s against 1.1 s).
    values_of = _values_getter(columns)
    processed = [(index, _repeat_cached(process)) for index, process in enumerate(
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns)
        if process is not None]
    quote = dialect.identifier_preparer.quote
    statement = (f"COPY {quote(table.name)} ({', '.join(quote(name) for name in columns)}) "
                 "FROM STDIN")
    with connection.connection.driver_connection.cursor() as cursor, \
            cursor.copy(statement) as copy:
        write_row = copy.write_row
        for row in rows:
            values = values_of(row)
            if processed:
                values = list(values)
                for index, process in processed:
                    if values[index] is not None:
                        values[index] = process(values[index])
            write_row(values)


def reserve_ids(connection: Connection, table: Table, count: int) -> list[int]:
    """Return, ascending, the next `count` ids of a PostgreSQL table's id sequence."""
    return sorted(connection.execute(
        select(func.nextval(func.pg_get_serial_sequence(table.name, table.c.id.name)))
        .select_from(func.generate_series(1, count))).scalars())


# ------------------------------------------------------------------------------ aggregates


def plain_rows(session: Session, statement: Select, params: dict[str, Any]) -> list[Any]:
    """Run a read on the session's connection: rows as tuples, without the ORM's row handling.

    For the monthly KPI aggregate, one row per organization (bench_kpi.py: the export within
    a few percent of its bare SQL).
    """
    return list(session.connection().execute(statement, params).all())


# Rows shaped per batch: the batch's Row objects die young. Kept all at once (.all()), 40k
# of them outlived the youngest generations, and the full collections they set off cost
# 60-100 ms of CPU at the person level of bench_kpi.py (1M referrals, 39k rows), more than
# fetching the rows.
SHAPE_BATCH = 1_000


def dict_rows(session: Session, statement: Select, params: dict[str, Any],
              columns: Sequence[str]) -> list[dict[str, Any]]:
    """Run a read on the session's connection: each row a dict of `columns`, in order.

    For the KPI levels (bench_kpi.py, 1M referrals, person level: 150 ms of CPU for
    .all() and dict(zip(...)) per row, 60 ms this way; fetching alone is about 35 ms).
    """
    result = session.connection().execute(statement, params)
    if len(result.keys()) != len(columns):
        result.close()
        raise ValueError(f"The statement returns {len(result.keys())} columns, not "
                         f"{len(columns)}: {', '.join(columns)}.")
    shape = _shaper(tuple(columns))
    rows: list[dict[str, Any]] = []
    for batch in result.partitions(SHAPE_BATCH):
        rows += map(shape, batch)
    return rows


@cache
def _shaper(columns: tuple[str, ...]) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """Return row -> {column: value}, compiled: a dict display with constant keys builds a
    row about twice as fast as dict(zip(columns, row))."""
    items = ", ".join(f"{name!r}: row[{index}]" for index, name in enumerate(columns))
    # The source holds only the column names' reprs and indexes.
    return eval(compile(f"lambda row: {{{items}}}", "<row shaper>", "eval"), {})  # noqa: S307


# ------------------------------------------------------------------------- the match index
# Ids per IN (...) when a sync reads many changed firms (SQLite allows 32766 parameters).
ID_CHUNK = 10_000
FETCH_BATCH = 10_000


def load_firms(session: Session, ids: list[int] | None = None) -> list[Firm]:
    """Read organizations (all, or `ids`) as scoring Firms, in three set-based queries.

    Core statements on the session's connection, rows consumed as plain tuples: the ORM's
    per-row machinery roughly doubled the read at 100k firms. Repeated strings (skill slugs,
    kinds) are shared, one object per distinct value: a million slugs are a few thousand.
    """
    if ids is not None and len(ids) > ID_CHUNK:
        return [firm for start in range(0, len(ids), ID_CHUNK)
                for firm in load_firms(session, ids[start:start + ID_CHUNK])]
    connection = session.connection()

    def rows(statement, column):
        # Plain DBAPI tuples, fetched in batches: a SQLAlchemy Row per row costs more than
        # the read itself at a million rows. Ids are integers, rendered into the statement.
        if ids is not None:
            statement = statement.where(column.in_([int(i) for i in ids]))
        sql = str(statement.compile(dialect=connection.dialect,
                                    compile_kwargs={"literal_binds": True}))
        cursor = connection.connection.cursor()
        try:
            cursor.execute(sql)
            while batch := cursor.fetchmany(FETCH_BATCH):
                yield from batch
        finally:
            cursor.close()

    shared: dict[str, str] = {}
    share = shared.setdefault
    offices: dict[int, list[ScoringOffice]] = defaultdict(list)
    for org_id, office_id, latitude, longitude, radius in rows(
        select(Office.organization_id, Office.id, Office.latitude, Office.longitude,
               Office.service_radius_km).order_by(Office.id), Office.organization_id,
    ):
        offices[org_id].append(ScoringOffice(id=office_id, latitude=latitude,
                                             longitude=longitude, service_radius_km=radius))
    skills: dict[int, list[str]] = defaultdict(list)
    for org_id, slug in rows(
        select(OrganizationSkill.organization_id, OrganizationSkill.slug)
        .order_by(OrganizationSkill.organization_id, OrganizationSkill.position),
        OrganizationSkill.organization_id,
    ):
        skills[org_id].append(share(slug, slug))
    firms = []
    no_offices: tuple[ScoringOffice, ...] = ()
    for (org_id, name, kind, description, active, capacity, open_, won, failed,
         group_id) in rows(
        select(Organization.id, Organization.name, Organization.kind, Organization.description,
               Organization.active, Organization.capacity, OrganizationStats.open_referrals,
               OrganizationStats.won, OrganizationStats.failed, Organization.group_id)
        .outerjoin(OrganizationStats).order_by(Organization.id), Organization.id,
    ):
        firm_offices = offices.pop(org_id, None)
        firm_skills = skills.pop(org_id, None)
        firms.append(Firm(
            id=org_id, name=name, kind=share(kind, kind),
            skills=tuple(firm_skills) if firm_skills else (), description=description or "",
            offices=tuple(firm_offices) if firm_offices else no_offices,
            active=bool(active), capacity=capacity,
            open_referrals=open_ or 0, won=won or 0, failed=failed or 0, group_id=group_id,
        ))
    return firms


# ------------------------------------------------------------------- referrals and clients
# The hot path of POST /referrals (bench/bench_kpi.py's HTTP run): each statement below does
# in one round trip what the ORM would do in two or three, or skips its per-row bookkeeping.


def insert_referral(session: Session, values: dict[str, Any]) -> int | None:
    """Insert one referral row, counting it as one more open referral of its receiver (as
    _count_on_receiver does); return its id (build the object with `built`, `as_loaded`), or
    None, writing nothing, where _count_on_receiver would refuse.

    A Core INSERT ... RETURNING id, then `as_loaded`: about 270 us of client CPU a referral
    against 490 us for session.add + flush (PostgreSQL, December, 400 inserts). On
    PostgreSQL the count and the row are one statement (WITH room AS (UPDATE ... RETURNING)
    INSERT ... SELECT ... FROM room): one round trip less for every referral.
    """
    referrer_id = values["referrer_organization_id"]
    receiver_id = values["receiver_organization_id"]
    now = values["created_at"]
    if session.get_bind().dialect.name != "postgresql":
        if not _count_on_receiver(session, referrer_id=referrer_id, receiver_id=receiver_id,
                                  now=now):
            return None
        return session.execute(_INSERT_REFERRAL, values).scalar_one()
    shape = tuple(sorted(values))
    statement = _INSERT_COUNTED_REFERRAL.get(shape)
    if statement is None:
        statement = _INSERT_COUNTED_REFERRAL[shape] = _insert_counted_referral(shape)
    return session.execute(statement, {
        "referrer": referrer_id, "receiver": receiver_id, "now": now,
        **{f"v_{column}": value for column, value in values.items()}}).scalar()


_INSERT_REFERRAL = insert(Referral.__table__).returning(Referral.__table__.c.id)
# One statement per set of columns given, built once (PostgreSQL).
_INSERT_COUNTED_REFERRAL: dict[tuple[str, ...], Insert] = {}


def _insert_counted_referral(columns: tuple[str, ...]) -> Insert:
    table = Referral.__table__
    room = _TAKE_CAPACITY.returning(OrganizationStats.__table__.c.organization_id).cte("room")
    row = select(*(bindparam(f"v_{column}", type_=table.c[column].type)
                   for column in columns)).select_from(room)
    return (insert(table).from_select(columns, row, include_defaults=False)
            .returning(table.c.id))


def built(cls: type[_T], values: dict[str, Any], **related: Any) -> _T:
    """Return a new (transient) `cls` object holding `values` (attribute names) and, set as
    loaded, the `related` objects or lists of its relationships.

    The values go into the object's dict as the ORM's own row loading puts them, without the
    constructor's attribute events and backref bookkeeping: 12 us a referral with its client
    and first history entry, against 60 us through the constructors (POST /referrals).
    """
    instance = _MANAGERS[cls].new_instance()
    instance.__dict__.update(values)
    for name, value in related.items():
        set_committed_value(instance, name, value)
    return instance


class _Managers(dict):
    """Each mapped class's instrumentation manager (what builds an object without __init__)."""

    def __missing__(self, cls: type) -> Any:
        # An object built without its constructor skips the constructor's check that the
        # mappers are configured (relationships set up): configure them here, once.
        configure_mappers()
        self[cls] = manager = inspect(cls).class_manager
        return manager


_MANAGERS = _Managers()


def as_loaded(session: Session, *instances: Any) -> None:
    """Make objects built from rows just inserted persistent, as if read back (no SELECT).

    Each instance must carry every column (its id too) and, in its relationships, only
    objects that are persistent already or passed here before it.
    """
    for instance in instances:
        make_transient_to_detached(instance)
        session.add(instance)


def _loaded(session: Session, cls: type[_T], values: dict[str, Any]) -> _T:
    """The session's object of that row if it holds one (as a query returns it), else the
    row's values as a persistent object (`built`, `as_loaded`)."""
    existing = session.identity_map.get(session.identity_key(cls, values["id"]))
    if existing is not None:
        return existing
    instance = built(cls, values)
    as_loaded(session, instance)
    return instance


def _count_on_receiver(session: Session, *, referrer_id: int, receiver_id: int, now: datetime
                       ) -> bool:
    """Count one more open referral for the receiver if it is active and has room and the
    referrer exists; return False, changing nothing, otherwise.

    One conditional UPDATE does the check and the write at once, and locks the count until
    commit; on the table, not the mapped class, it skips the ORM's bulk-update path.
    """
    return session.execute(_TAKE_CAPACITY, {"referrer": referrer_id, "receiver": receiver_id,
                                            "now": now}).rowcount == 1


def _take_capacity_statement() -> Update:
    stats, organizations = OrganizationStats.__table__, Organization.__table__
    receiver = bindparam("receiver", type_=Integer())
    referrer = bindparam("referrer", type_=Integer())
    has_room = (
        select(organizations.c.id)
        .where(organizations.c.id == receiver, organizations.c.active.is_(True),
               or_(organizations.c.capacity.is_(None),
                   stats.c.open_referrals < organizations.c.capacity))
        .correlate(stats)
        .exists()
    )
    referrer_exists = select(organizations.c.id).where(organizations.c.id == referrer).exists()
    return (
        update(stats)
        .where(stats.c.organization_id == receiver, has_room, referrer_exists)
        .values(open_referrals=stats.c.open_referrals + 1,
                updated_at=bindparam("now", type_=UTCDateTime()))
    )


_TAKE_CAPACITY = _take_capacity_statement()
# INSERT ... ON CONFLICT DO NOTHING, per dialect (SQLite and PostgreSQL spell it alike).
_INSERT_UNLESS_EXISTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_CLIENTS = Client.__table__
# Every column of a client: a row read or written becomes a Client through `_loaded`.
_NO_CLIENT_VALUES = {column.key: None for column in _CLIENTS.c}


def same_client(session: Session, normalized: str, ref_key: str | None, *, lock: bool
                ) -> Client | None:
    """Return "the same client" as (normalized name, CRM id key), or None
    (services/clients.py says what the same is); with lock, locked until the transaction ends.

    A Core SELECT of the row, made a Client without the ORM's row loading: 145 us of client
    CPU against 210 us for select(Client) (PostgreSQL, a lookup that finds nothing, which is
    every new client's).
    """
    params = {"normalized": normalized, **({"ref_key": ref_key} if ref_key else {})}
    row = session.execute(_SAME_CLIENT[bool(ref_key), lock], params).first()
    return None if row is None else _loaded(session, Client, row._asdict())


def _same_client_query(*, by_ref: bool, lock: bool) -> Select:
    """The SELECT of same_client, built once. Parameters: normalized and, with by_ref,
    ref_key."""
    table = _CLIENTS
    normalized = bindparam("normalized", type_=table.c.normalized_name.type)
    if by_ref:
        key = bindparam("ref_key", type_=table.c.external_ref_key.type)
        # By CRM id first; else a client of that name that has no CRM id yet.
        where = or_(table.c.external_ref_key == key,
                    and_(table.c.normalized_name == normalized,
                         table.c.external_ref_key.is_(None)))
        preference = (table.c.external_ref_key == key).desc()
    else:
        # A name-only request is the same as any client of that name, name-only ones first.
        where = table.c.normalized_name == normalized
        preference = table.c.external_ref_key.is_not(None)
    query = select(*table.c).where(where).order_by(preference, table.c.id).limit(1)
    return query.with_for_update() if lock else query


# Built once: building a select() costs more than running it from the compiled cache.
_SAME_CLIENT = {(by_ref, lock): _same_client_query(by_ref=by_ref, lock=lock)
                for by_ref in (False, True) for lock in (False, True)}


def _insert_client(session: Session, values: dict[str, Any]) -> Client | None:
    """Insert a client; None, writing nothing, if a unique constraint says it exists.

    INSERT ... ON CONFLICT DO NOTHING RETURNING: the loser of a race to create one client
    gets nothing back (and then reads the winner's row) instead of an IntegrityError that
    would need a savepoint, which costs two more round trips on every creation. A statement
    built once, on the table, returning the id; the Client made from the values: 170 us of
    client CPU against 500 us for the ORM's insert(Client).values(...).returning(Client).
    """
    client_id = session.execute(_INSERT_CLIENT[session.get_bind().dialect.name],
                                values).scalar()
    if client_id is None:
        return None
    # A new row: no object of it can be in the session yet.
    client = built(Client, {**_NO_CLIENT_VALUES, **values, "id": client_id})
    as_loaded(session, client)
    return client


_INSERT_CLIENT = {name: insert_(_CLIENTS).on_conflict_do_nothing().returning(_CLIENTS.c.id)
                  for name, insert_ in _INSERT_UNLESS_EXISTS.items()}


def find_or_insert_client(session: Session, normalized: str, ref_key: str | None,
                          values: dict[str, Any]) -> tuple[Client | None, bool]:
    """Return (client, created): same_client's row, locked, or else a new client of `values`
    inserted as _insert_client does; (None, False), writing nothing, when a concurrent
    transaction inserted the same client first (look again: its row is there now).

    On PostgreSQL one statement does both, the lookup and the insert (WITH found AS (SELECT
    ... FOR UPDATE), made AS (INSERT ... WHERE NOT EXISTS found ON CONFLICT DO NOTHING)): one
    round trip less for every new client; SQLite runs the two one after the other.
    """
    if session.get_bind().dialect.name != "postgresql":
        client = same_client(session, normalized, ref_key, lock=True)
        if client is not None:
            return client, False
        client = _insert_client(session, values)
        return client, client is not None
    params = {"normalized": normalized, **({"ref_key": ref_key} if ref_key else {}),
              **{f"new_{column}": values.get(column) for column in _NEW_CLIENT_COLUMNS}}
    row = session.execute(_FIND_OR_INSERT_CLIENT[bool(ref_key)], params).first()
    if row is None:
        return None, False
    *columns, created = row
    return _loaded(session, Client, dict(zip(_CLIENTS.c.keys(), columns, strict=True))), created


# What a new client is written with (the rest, its id and erased_at, are the table's).
_NEW_CLIENT_COLUMNS = tuple(column.key for column in _CLIENTS.c
                            if column.key not in ("id", "erased_at"))


def _find_or_insert_client_query(*, by_ref: bool) -> Select:
    found = _same_client_query(by_ref=by_ref, lock=True).cte("found")
    new_row = select(*(bindparam(f"new_{column}", type_=_CLIENTS.c[column].type)
                       for column in _NEW_CLIENT_COLUMNS)).where(~select(found).exists())
    made = (postgresql.insert(_CLIENTS).from_select(_NEW_CLIENT_COLUMNS, new_row)
            .on_conflict_do_nothing().returning(*_CLIENTS.c).cte("made"))
    return (select(*found.c, literal(False).label("created"))
            .union_all(select(*made.c, literal(True).label("created"))))


# Built once, like _SAME_CLIENT; PostgreSQL only.
_FIND_OR_INSERT_CLIENT = {by_ref: _find_or_insert_client_query(by_ref=by_ref)
                          for by_ref in (False, True)}


def clients_for_update(session: Session, normalized_names: list[str], ref_keys: list[str]
                       ) -> list[Client]:
    """Return, locked, every client with one of the normalized names or CRM id keys, by id.

    One SELECT ... FOR UPDATE for the clients of a visit report (the visited client and its
    leads), where find-or-create one at a time took a lookup each; locked in id order, so that
    two reports naming the same clients lock them in the same order.
    """
    rows = session.execute(_CLIENTS_FOR_UPDATE, {
        "names": normalized_names, "keys": ref_keys or [""]}).all()
    return [_loaded(session, Client, row._asdict()) for row in rows]


# Built once, the IN lists expanding parameters: 0.2 ms less client CPU a visit than a
# select() built per call (bench_visits, py-spy). No CRM id key is "" (ref_key gives None).
_CLIENTS_FOR_UPDATE = (
    select(*_CLIENTS.c)
    .where(or_(_CLIENTS.c.normalized_name.in_(bindparam("names", expanding=True)),
               _CLIENTS.c.external_ref_key.in_(bindparam("keys", expanding=True))))
    .order_by(_CLIENTS.c.id).with_for_update())


def insert_clients(session: Session, rows: list[dict[str, Any]]) -> dict[tuple, Client]:
    """Insert clients in one statement; return the new ones by (normalized_name,
    external_ref_key). A row a unique constraint refuses (a concurrent request created it
    first) writes nothing and is missing from the result, as with _insert_client.

    On PostgreSQL the rows as one JSON document (`_json_insert`); on SQLite a multi-row VALUES.
    """
    returning = (_CLIENTS.c.id, _CLIENTS.c.normalized_name, _CLIENTS.c.external_ref_key)
    if session.get_bind().dialect.name == "postgresql":
        result = _json_insert(session, _CLIENTS, rows, skip_existing=True,
                              returning=returning)
    else:
        result = session.execute(sqlite.insert(_CLIENTS).on_conflict_do_nothing()
                                 .returning(*returning), rows)
    created = {}
    by_identity = {(row["normalized_name"], row["external_ref_key"]): row for row in rows}
    for client_id, normalized, key in result.all():
        client = built(Client, {**_NO_CLIENT_VALUES, **by_identity[normalized, key],
                                "id": client_id})
        as_loaded(session, client)
        created[normalized, key] = client
    return created


def insert_returning_ids(session: Session, cls: type, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows of one table in one statement; return their ids in the order of the rows.

    On PostgreSQL the rows as one JSON document (`_json_insert`), the ids sorted ascending:
    the rows go in in their order and the id sequence numbers them so (the assumption
    SQLAlchemy's sort_by_parameter_order makes too). On SQLite, SQLAlchemy's
    insertmanyvalues: one INSERT ... VALUES (...), (...) RETURNING, the ids sorted back into
    the rows' order.
    """
    table = cls.__table__
    if session.get_bind().dialect.name == "postgresql":
        return sorted(_json_insert(session, table, rows, returning=(table.c.id,)).scalars())
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(session.execute(statement, rows).scalars())


def _json_insert(session: Session, table: Table, rows: list[dict[str, Any]], *,
                 returning: tuple, skip_existing: bool = False) -> Any:
    """INSERT INTO table (...) SELECT ... FROM json_to_recordset(the rows as one JSON
    document) in the rows' order [ON CONFLICT DO NOTHING] RETURNING ...: PostgreSQL only,
    rows with the same keys and JSON-able values (text, numbers, booleans, None, aware
    datetimes; a JSON column's value as it is).

    One parameter whatever the number of rows, serialized by orjson: a VALUES list of a
    visit's 5 leads is 110 parameters, and psycopg converts a statement of more than 50 anew
    each time and dumps each value in Python (540 us of CPU a 5-lead insert here, 420 us with
    one array a column, about 150 us this way); the server prepares the statement once for
    any number of rows. Values go through their column's bind processing (UTCDateTime: aware,
    made UTC) except a JSON column's, which the document carries as it is.
    """
    columns = tuple(rows[0])
    key = (table.name, columns, returning, skip_existing)
    prepared = _JSON_INSERTS.get(key)
    if prepared is None:
        prepared = _JSON_INSERTS[key] = _json_insert_statement(
            session.get_bind().dialect, table, columns, returning, skip_existing)
    statement, processors = prepared
    if processors:
        rows = [{**row, **{name: process(row[name]) for name, process in processors}}
                for row in rows]
    return session.execute(statement, {"rows": orjson.dumps(rows).decode()})


def _json_insert_statement(dialect: Any, table: Table, columns: tuple[str, ...],
                           returning: tuple, skip_existing: bool
                           ) -> tuple[TextClause, list[tuple[str, Any]]]:
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in columns)
    typed = ", ".join(f"{quote(name)} {table.c[name].type.compile(dialect=dialect)}"
                      for name in columns)
    # Only the table's own names and types go into the text (quoted); the rows are a parameter.
    statement = text(
        f"INSERT INTO {quote(table.name)} ({names}) SELECT {names} FROM ROWS FROM "  # noqa: S608
        f"(json_to_recordset(CAST(:rows AS JSON)) AS ({typed})) WITH ORDINALITY "
        f"AS r({names}, r_position) ORDER BY r_position"
        f"{' ON CONFLICT DO NOTHING' if skip_existing else ''} "
        f"RETURNING {', '.join(quote(column.name) for column in returning)}")
    processors = []
    for name in columns:
        column_type = table.c[name].type
        if isinstance(column_type, JSON):
            continue
        process = column_type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((name, process))
    return statement, processors


_JSON_INSERTS: dict[tuple, tuple[TextClause, list[tuple[str, Any]]]] = {}


def person_row(session: Session, person_id: int) -> Any:
    """Return the row (id, organization_id, active) of one person, or None (a visit's
    salesperson).

    A Core SELECT on the table: the ORM-enabled select of the same three columns cost about
    50 us more of each visit's client CPU (its compile state and row handling; bench_visits,
    py-spy).
    """
    return session.execute(_PERSON, {"person_id": person_id}).first()


_PEOPLE = Person.__table__
_PERSON = select(_PEOPLE.c.id, _PEOPLE.c.organization_id, _PEOPLE.c.active).where(
    _PEOPLE.c.id == bindparam("person_id"))


def claim_idempotency_key(session: Session, values: dict[str, Any]
                          ) -> IdempotencyRecord | None:
    """Insert an Idempotency-Key's record; None, writing nothing, if the key is recorded.

    ON CONFLICT DO NOTHING, as _insert_client: a concurrent repeat waits on the unique
    (api_key_id, key) until the first transaction ends, then gets nothing and reads the
    stored response, with no savepoint.
    """
    insert_ = _INSERT_UNLESS_EXISTS[session.get_bind().dialect.name]
    return session.scalars(insert_(IdempotencyRecord).values(**values)
                           .on_conflict_do_nothing().returning(IdempotencyRecord)).first()


def insert_unless_exists(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    """Insert rows, skipping each that a unique constraint says exists already (INSERT ...
    ON CONFLICT DO NOTHING): the loser of a race to create a group reads the winner's."""
    insert_ = _INSERT_UNLESS_EXISTS[session.get_bind().dialect.name]
    session.execute(insert_(model).on_conflict_do_nothing(), rows)


# ------------------------------------------------------------------- organization profiles
# The writes of services/organizations.write_profiles, one set-based statement per table for
# a whole batch of planned profiles (one profile for POST and PATCH, up to a thousand for an
# import). Figures: 100k rows into SQLite took 6.7 s through the ORM's add_all and 0.4 s
# through executemany; into PostgreSQL 11.2 s against 2.1 s (COPY 0.5 s) (LIBRARY-NOTES.md);
# the import of 100k firms (bench/bench_import.py) runs in about 19 s wall, 16.4 s CPU, on
# SQLite this way (5,200 firms/s; PostgreSQL 3,800 firms/s).
PROFILE_CHUNK = 1000  # ids per IN (...) of a delete


def insert_organizations(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert organization rows; return their new ids, in the order of the rows."""
    connection = session.connection()
    table = Organization.__table__
    if connection.dialect.name == "postgresql":
        # The ids the table's sequence gives them (one query), then COPY: 0.5 s at 100k
        # where INSERT ... RETURNING in batches took 6 s.
        ids = reserve_ids(connection, table, len(rows))
        try:
            bulk_insert(connection, table,
                        [{"id": org_id, **row} for org_id, row in zip(ids, rows, strict=True)])
        except connection.dialect.dbapi.IntegrityError as error:
            # COPY runs on the driver's cursor: raise as SQLAlchemy would for an INSERT.
            from sqlalchemy.exc import IntegrityError
            raise IntegrityError("COPY organizations", None, error) from error
        return ids
    if not connection.get_execution_options().get("sqlite_immediate"):
        # A transaction without the write lock: RETURNING one row at a time, as the ORM's
        # flush does.
        return list(connection.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars())
    # SQLite, the write lock held since BEGIN IMMEDIATE (db.py: every write session): the ids
    # it would give are max(id) + 1, + 2, ... (an INTEGER PRIMARY KEY without AUTOINCREMENT)
    # and nobody else can insert before the commit, so they are taken in one query. The
    # RETURNING path cost 1.5 s of a 100k-firm import (a statement per row), this 0.2 s.
    start = connection.execute(select(func.max(table.c.id))).scalar() or 0
    ids = list(range(start + 1, start + 1 + len(rows)))
    _insert_plain(connection, table, [{"id": org_id, **row}
                                      for org_id, row in zip(ids, rows, strict=True)])
    return ids


def insert_many(session: Session, rows: Mapping[type | Table, list[dict[str, Any]]]) -> None:
    """Insert each (mapped class or table)'s rows, one bulk insert per table in turn."""
    connection = session.connection()
    for target, values in rows.items():
        _insert_plain(connection, getattr(target, "__table__", target), values)


def _insert_plain(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """bulk_insert, and on SQLite the driver's executemany of plain tuples.

    SQLAlchemy's executemany builds each row's parameters through the statement's compiled
    form (construct_params and the processors: about 9 us a row here); tuples made with the
    columns' own bind processors (each applied once to a value repeated row after row, such
    as the batch's timestamp) cost about 2 us. A 100k-firm import writes about 1.5 million
    rows: 9.6 s of its CPU against 3.2 s this way (bench/bench_import.py profile). Rows that
    leave out a column with a Python-side default go through SQLAlchemy, which applies it.
    """
    if not rows:
        return
    columns = list(rows[0])
    if connection.dialect.name != "sqlite" or any(
            column.default is not None for column in table.columns
            if column.name not in rows[0]):
        bulk_insert(connection, table, rows)
        return
    dialect = connection.dialect
    compiled = insert(table).compile(dialect=dialect, column_keys=columns)
    statement = str(compiled)
    columns = list(compiled.positiontup or ())
    processors = [(index, _repeat_cached(process)) for index, process in enumerate(
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns)
        if process is not None]
    values_of = _values_getter(columns)
    values = ([list(values_of(row)) for row in rows] if processors
              else list(map(values_of, rows)))
    for index, process in processors:
        for row in values:
            row[index] = process(row[index])
    cursor = connection.connection.driver_connection.cursor()
    try:
        cursor.executemany(statement, values)
    except connection.dialect.dbapi.Error as error:
        from sqlalchemy.exc import DBAPIError
        raise DBAPIError.instance(statement, None, error, connection.dialect.dbapi.Error,
                                  dialect=dialect) from error
    finally:
        cursor.close()


def _values_getter(columns: Sequence[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """Return row -> the tuple of its values of `columns`, in order (itemgetter, in C)."""
    if len(columns) == 1:
        return lambda row: (row[columns[0]],)
    return itemgetter(*columns)


def _repeat_cached(process: Any) -> Any:
    """The bind processor, not run again for the value it was just given (by identity)."""
    last: list[Any] = [_UNSET, None]

    def cached(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, process(value)
        return last[1]

    return cached


_UNSET = object()


def update_organizations(session: Session, rows: list[dict[str, Any]]) -> None:
    """Update organization rows by id, each with `version` one above its "expected_version".

    Refuses (StaleProfile) if a row is no longer at the version it was read at.
    """
    if not rows:
        return
    table = Organization.__table__
    columns = [column for column in rows[0] if column not in ("id", "expected_version")]
    result = session.connection().execute(
        table.update()
        .where(table.c.id == bindparam("b_id"),
               table.c.version == bindparam("b_expected_version"))
        .values({column: bindparam("b_" + column) for column in columns}),
        [{"b_" + key: value for key, value in row.items()} for row in rows])
    if result.rowcount not in (-1, len(rows)):
        raise StaleProfile("An organization changed while it was being written.")


class StaleProfile(Exception):
    """A profile row moved on between its read and its write."""


def delete_by(session: Session, column: Any, values: list[Any]) -> None:
    """Delete the rows of a mapped column's table whose column is one of `values`."""
    table = column.table
    connection = session.connection()
    for start in range(0, len(values), PROFILE_CHUNK):  # bounded bind parameters
        connection.execute(table.delete().where(
            column.in_(values[start:start + PROFILE_CHUNK])))


def update_offices(session: Session, rows: list[dict[str, Any]]) -> None:
    """Update office rows by "id" (each row gives every column it sets)."""
    if not rows:
        return
    table = Office.__table__
    session.connection().execute(
        table.update().where(table.c.id == bindparam("b_id")).values(
            {column: bindparam("b_" + column) for column in rows[0] if column != "id"}),
        [{"b_" + key: value for key, value in row.items()} for row in rows])


def load_profiles(session: Session, ids: list[int], fields: Sequence[str],
                  office_fields: Sequence[str]) -> dict[int, dict[str, Any]]:
    """Return {id: profile} of these organizations (fields, "version", "skills", "offices").

    Three set-based reads (the ORM's objects cost several times more for a batch of a
    thousand firms); on PostgreSQL the organization rows stay locked until the transaction
    ends, so that no other write slips in between this read and the batch's writes.
    """
    table, groups = Organization.__table__, Group.__table__
    skills, offices = OrganizationSkill.__table__, Office.__table__
    connection = session.connection()
    names = tuple(fields)
    # "group" is the name of the firm's group (models.Organization.group)
    columns = [groups.c.name if name == "group"
               else table.c[getattr(Organization, name).expression.name] for name in names]
    profiles: dict[int, dict[str, Any]] = {}
    # Rows fetched at once and read by position: a Row's _mapping per value cost 0.7 s of
    # a 20k-firm re-import's 1.7 s here (bench/bench_import.py --updates profile).
    for org_id, version, *values in connection.execute(
            select(table.c.id, table.c.version, *columns)
            .select_from(table.outerjoin(groups, groups.c.id == table.c.group_id))
            .where(table.c.id.in_(ids)).with_for_update(of=table)).all():
        profiles[org_id] = {**dict(zip(names, values, strict=True)), "version": version,
                            "skills": [], "offices": []}
    for org_id, slug in connection.execute(
            select(skills.c.organization_id, skills.c.slug)
            .where(skills.c.organization_id.in_(ids))
            .order_by(skills.c.organization_id, skills.c.position)).all():
        profiles[org_id]["skills"].append(slug)
    office_names = ("id", *office_fields)
    for org_id, *values in connection.execute(
            select(offices.c.organization_id, offices.c.id,
                   *(offices.c[name] for name in office_fields))
            .where(offices.c.organization_id.in_(ids)).order_by(offices.c.id)).all():
        profiles[org_id]["offices"].append(dict(zip(office_names, values, strict=True)))
    return profiles


def refresh_statistics(session: Session) -> None:
    """Refresh PostgreSQL's planner statistics of the profile tables (SQLite keeps none).

    After a bulk import of new firms: before them, each worker's once-a-second index sync
    read the changed firms with a plan for empty tables (22 ms instead of 1.6 ms at 100k).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql(
            "ANALYZE organizations, organization_stats, organization_skills, offices")


# Firms per unit of work of a bulk import (services/importing.py). SQLite writes every page a
# commit dirtied to its write-ahead log and copies it into the database file at the checkpoint
# that follows, and a batch's names land on random pages of the unique index of their keys:
# at 1,000 firms a commit, importing 100k firms wrote 1.7 GiB (20 KB a firm), at 5,000 0.8 GiB
# (bench/bench_import.py, /proc/PID/io). A batch holds SQLite's one write lock, so other
# writers wait for it: 5,000 firms take a second or two. PostgreSQL writes each page once per
# checkpoint, not per commit: its batches stay at 1,000 (5,227 firms/s at 1M, issue 17).
IMPORT_BATCH = {"sqlite": 5000, "postgresql": 1000}


def import_batch(session: Session) -> int:
    """Return how many firms a bulk import writes in one unit of work on this database."""
    return IMPORT_BATCH[session.get_bind().dialect.name]


# SQLite's page cache for a bulk import's connection, in KiB (the default is 2 MiB): importing
# 1M firms, each 100k cost 16-19 s of CPU to the end instead of growing from 17 s to 22 s
# (the indexes outgrew the cache and their pages were read again from the file).
BULK_PAGE_CACHE_KIB = 131_072


@contextmanager
def bulk_page_cache(session: Session) -> Iterator[None]:
    """Give each SQLite connection the session begins a transaction on inside the block a page
    cache of BULK_PAGE_CACHE_KIB, and its own size back at the end (PostgreSQL: nothing).

    A bulk import inserts into an index at random places (the names' keys; the events' ids
    did too until they became UUIDv7, services/events.py): with the default cache most of
    those pages were read again from the file for every batch.
    """
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    before: dict[Any, int] = {}  # DBAPI connection -> its cache_size before the block

    def widen(_session: Session, _transaction: Any, connection: Connection) -> None:
        raw = connection.connection.driver_connection
        if raw not in before:
            before[raw] = raw.execute("PRAGMA cache_size").fetchone()[0]
            raw.execute(f"PRAGMA cache_size = -{BULK_PAGE_CACHE_KIB}")

    event.listen(session, "after_begin", widen)
    try:
        yield
    finally:
        event.remove(session, "after_begin", widen)
        for raw, size in before.items():  # back in the pool: a web worker's own size
            raw.execute(f"PRAGMA cache_size = {int(size)}")


# Gates: PostgreSQL advisory locks, each between one rare change that must see every write of
# some kind committed before it and the many writes that must not slip past it. Shared by the
# many, exclusive for the rare one, until the transaction ends; one statement, about 0.1 ms.
# SQLite runs one write transaction at a time (BEGIN IMMEDIATE): there is nothing to take.
# - kpi_months: closing a KPI month (exclusive) against the booking of a closed month's
#   corrections (services/months.py), so that a closing reads every change committed before
#   it and a change committed after it sees the month closed (and books its correction);
# - skill_vocabulary: declaring an alias or merging a skill (exclusive, services/skills.py)
#   against profile writes (services/organizations.write_profiles), so that a firm's tag is
#   never stored as a slug that has just become an alias (SPEC section 8).
GATES = {"kpi_months": 0x4B50494D, "skill_vocabulary": 0x534B494C}  # "KPIM", "SKIL"


def gate(session: Session, name: str, *, exclusive: bool) -> None:
    """Take the gate `name` (GATES) until the transaction ends (PostgreSQL; SQLite: nothing)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    lock = func.pg_advisory_xact_lock if exclusive else func.pg_advisory_xact_lock_shared
    session.execute(select(lock(GATES[name])))
