"""Flask CLI commands: thin wrappers over the services."""

from __future__ import annotations

import signal
import sys
import threading
from typing import TextIO

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from referral_service import demo, extensions, migrate
from referral_service.adapters import backup as backups
from referral_service.adapters import import_files
from referral_service.db import get_engine, session_scope
from referral_service.services import (
    auth,
    erasure,
    importing,
    kpi,
    people,
    referrals,
    webhooks,
)
from referral_service.services.auth import SYSTEM, Principal
from referral_service.services.errors import ServiceError

db_cli = AppGroup("db", help="Database schema (Alembic migrations).")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    migrate.upgrade(current_app, revision)
    click.echo(f"Database upgraded to {revision}.")


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models."""
    migrate.revision(current_app, message)


@click.command("create-api-key")
@click.option("--name", required=True, help="Who the key is for.")
@click.option("--role", required=True, type=click.Choice(["admin", "crm", "partner"]))
@click.option("--organization", "organization_id", type=int, help="Required for partner keys.")
def create_api_key(name: str, role: str, organization_id: int | None) -> None:
    """Create an API key and print it once, as the last line."""
    with session_scope() as session:
        try:
            key, raw = auth.create_api_key(session=session, name=name, role=role,
                                           organization_id=organization_id)
        except ServiceError as error:
            raise click.ClickException(error.detail) from None
        click.echo(f"Created API key {key.id} ({role}) for {name}. It is shown only once:")
    click.echo(raw)


@click.command("revoke-api-key")
@click.argument("key_id", type=int)
def revoke_api_key(key_id: int) -> None:
    """Revoke API key KEY_ID (the id create-api-key printed); it cannot be undone."""
    with session_scope() as session:
        try:
            key = auth.revoke_api_key(session=session, key_id=key_id)
        except ServiceError as error:
            raise click.ClickException(error.detail) from None
        seconds = current_app.config["API_KEY_CACHE_SECONDS"]
        click.echo(f"Revoked API key {key.id} ({key.name}); running workers refuse it within "
                   f"{seconds:g} s.")


@click.command("create-user")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(["admin", "partner"]))
@click.option("--organization", "organization_id", type=int, help="Required for partners.")
@click.option("--person", "person_id", type=int,
              help="The existing person (of the organization) who signs in with it.")
@click.option("--name", help="The new person's name, when --person is not given.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def create_user(email: str, role: str, organization_id: int | None, person_id: int | None,
                name: str | None, password: str) -> None:
    """Create a portal user; a partner user is a person of its organization (made if new)."""
    with session_scope() as session:
        try:
            user = auth.create_user(session=session, email=email, password=password, role=role,
                                    organization_id=organization_id, person_id=person_id,
                                    name=name)
        except ServiceError as error:
            raise click.ClickException(error.detail) from None
        person = f", person {user.person_id}" if user.person_id else ""
        click.echo(f"Created user {user.id} <{user.email}> ({role}{person}).")


@click.command("set-password")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def set_password(email: str, password: str) -> None:
    """Give a portal user a new password; every session they had ends."""
    with session_scope() as session:
        try:
            auth.set_password(session=session, password=password,
                              user_id=auth.user_id_by_email(session=session, email=email))
        except ServiceError as error:
            raise click.ClickException(error.detail) from None
    click.echo(f"New password set for <{email.strip().lower()}>; their sessions ended.")


@click.command("deactivate-user")
@click.option("--email", required=True)
def deactivate_user(email: str) -> None:
    """Stop a portal user signing in; every session they had ends."""
    with session_scope() as session:
        try:
            auth.deactivate_user(session=session,
                                 user_id=auth.user_id_by_email(session=session, email=email))
        except ServiceError as error:
            raise click.ClickException(error.detail) from None
    click.echo(f"<{email.strip().lower()}> can no longer sign in; their sessions ended.")


@click.command("import-organizations")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def import_organizations(file: str) -> None:
    """Create or update organizations from a CSV or JSON-lines FILE (by external_ref)."""
    with open(file, encoding="utf-8-sig", newline="") as handle:
        total = sum(1 for _ in handle) - (0 if import_files.is_json_lines(file) else 1)
    with open(file, encoding="utf-8-sig", newline="") as handle, session_scope() as session, \
            click.progressbar(length=max(total, 0), label="Importing", file=sys.stderr) as bar:
        report = importing.import_organizations(
            session=session, records=import_files.read_lines(handle, file),
            geocoder=extensions.geocoder(), progress=bar.update,
        )
    for number, reason in report.rejected:
        click.echo(f"line {number}: rejected: {reason}")
    click.echo(f"created {report.created}, updated {report.updated}, "
               f"rejected {len(report.rejected)}")


@click.command("import-people")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def import_people(file: str) -> None:
    """Create or update people from a CSV, JSON-lines or JSON-array FILE (by organization and
    external_ref); one bad line and nothing is written."""
    with open(file, encoding="utf-8-sig", newline="") as handle, session_scope() as session:
        try:
            report = people.import_people(session=session,
                                          records=import_files.read_people(handle, file))
        except ServiceError as error:
            raise click.ClickException(error.detail) from None
    for number, reason in report.rejected:
        click.echo(f"line {number}: rejected: {reason}", err=True)
    if report.rejected:
        raise click.ClickException(f"nothing imported (bad lines: {len(report.rejected)})")
    click.echo(f"created {report.created}, updated {report.updated}, "
               f"unchanged {report.unchanged}, departments created {report.departments_created}")


@click.command("seed-demo")
def seed_demo() -> None:
    """Load a realistic demo data set and print how to sign in."""
    with session_scope() as session:
        result = demo.seed(session=session, geocoder=extensions.geocoder())
    if result is None:
        click.echo("Demo data is already there; nothing added.")
        click.echo(f"Head office sign-in: {demo.ADMIN_EMAIL} / {demo.ADMIN_PASSWORD}"
                   " (unless changed with set-password)")
        click.echo(f"Partner sign-in:     {demo.PARTNER_EMAIL} / {demo.PARTNER_PASSWORD}")
        click.echo("The admin API key was shown once, when the demo was first loaded. "
                   "For a new one: .venv/bin/flask --app wsgi create-api-key "
                   "--name <who> --role admin")
        return
    click.echo(f"Seeded {result.organizations} organizations and {result.referrals} referrals.")
    click.echo(f"Head office sign-in: {result.admin_email} / {result.admin_password}")
    click.echo(f"Partner sign-in:     {result.partner_email} / {result.partner_password}")
    if result.other_partner_emails:
        click.echo(f"More partner sign-ins (same password): "
                   f"{', '.join(result.other_partner_emails)}")
    click.echo(f"Admin API key (shown once): {result.api_key}")


@click.command("deliver-webhooks")
@click.option("--loop", is_flag=True, help="Keep running, polling every --interval seconds.")
@click.option("--interval", type=click.FloatRange(min=0.01), default=5.0, show_default=True,
              help="Seconds between polls when nothing is due (with --loop).")
@click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Most events to handle in one pass.")
def deliver_webhooks(loop: bool, interval: float, limit: int) -> None:
    """Deliver due webhook events to WEBHOOK_URLS, once or (--loop) until stopped."""
    settings = webhooks.Settings.from_config(current_app.config)
    try:
        webhooks.check_settings(settings)
    except webhooks.WebhookConfigError as error:
        raise click.ClickException(str(error)) from None

    def show(report: webhooks.Report) -> None:
        click.echo(f"delivered {report.delivered}, retrying {report.retrying}, "
                   f"dead {report.dead}")

    with session_scope() as session:
        if not loop:
            show(webhooks.deliver_due(session=session, settings=settings, limit=limit))
            return
        stop = threading.Event()
        # SIGTERM/SIGINT end the loop after the event in hand, never halfway through it.
        previous = {number: signal.signal(number, lambda *_: stop.set())
                    for number in (signal.SIGTERM, signal.SIGINT)}
        try:
            webhooks.run(session=session, settings=settings, interval=interval, stop=stop,
                         on_report=show, limit=limit)
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


@click.command("webhooks-status")
@click.option("--dead", "show_dead", type=click.IntRange(min=0), default=20, show_default=True,
              help="How many of the newest dead events to list.")
def webhooks_status(show_dead: int) -> None:
    """Print how many webhook events are pending, delivered and dead; list the dead ones."""
    with session_scope(write=False) as session:
        counts = webhooks.counts(session=session)
        oldest = webhooks.oldest_pending(session=session)
        dead = webhooks.dead_events(session=session, limit=show_dead) if show_dead else []
    for state, count in counts.items():
        suffix = f" (oldest created {oldest.isoformat()})" if state == "pending" and oldest else ""
        click.echo(f"{state}: {count}{suffix}")
    for event in dead:
        click.echo(f"dead {event.event_id} {event.type} created {event.created_at.isoformat()} "
                   f"attempts {event.attempts}: {event.last_error}")


@click.command("webhooks-requeue")
@click.argument("event_ids", nargs=-1)
@click.option("--all", "all_dead", is_flag=True, help="Requeue every dead event.")
def webhooks_requeue(event_ids: tuple[str, ...], all_dead: bool) -> None:
    """Give dead webhook events (the given EVENT_IDS, or --all) a fresh set of attempts."""
    if bool(event_ids) == all_dead:
        raise click.UsageError("Give event ids or --all (not both).")
    with session_scope() as session:
        count = webhooks.requeue_dead(session=session, event_ids=None if all_dead else event_ids)
    click.echo(f"Requeued {count} dead event(s).")


@click.command("backup")
@click.option("--output", required=True, type=click.Path(dir_okay=False, writable=True),
              help="File to write (SQLite: a database file; PostgreSQL: pg_dump -Fc).")
def backup_database(output: str) -> None:
    """Write a consistent backup of the database; safe while the service is running."""
    try:
        result = backups.backup(engine=get_engine(), output=output,
                                pg_dump=current_app.config["PG_DUMP"])
    except backups.BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Backed up the {result.backend} database (schema {result.schema_revision}) to "
               f"{result.path}: {result.size_bytes} bytes in {result.seconds:.1f} s.")


@click.command("restore")
@click.option("--input", "input_", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A file written by `flask backup`.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def restore_database(input_: str, yes: bool) -> None:
    """Replace the database with a backup; stop the service and webhook deliverer first."""
    engine = get_engine()
    if not yes:
        click.confirm(f"Replace every row of the {engine.url.get_backend_name()} database with "
                      f"{input_}?", abort=True)
    try:
        result = backups.restore(engine=engine, input_=input_,
                                 pg_restore=current_app.config["PG_RESTORE"])
    except backups.BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Restored {result.path} into the {result.backend} database (schema "
               f"{result.schema_revision}) in {result.seconds:.1f} s. Run `flask db upgrade` "
               "if the code is newer than the backup.")


@click.command("kpi-export")
@click.option("--month", required=True, help="The month, YYYY-MM (UTC).")
@click.option("--format", "fmt", type=click.Choice(kpi.FORMATS), default="csv",
              show_default=True)
@click.option("--level", type=click.Choice((*kpi.LEVELS, "all")), default="organization",
              show_default=True,
              help="The rows: one per organization, department or person; all (XLSX only): "
                   "a sheet for each level and the departments' chart.")
@click.option("--output", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="File to write ('-' for standard output).")
def kpi_export(month: str, fmt: str, level: str, output: str) -> None:
    """Write a month's KPI export: the same bytes as GET /api/v1/kpi/monthly."""
    levels = kpi.LEVELS if level == "all" else (level,)
    with session_scope(write=False) as session:
        try:
            if level != "all":  # a closed month: the bytes stored when it closed
                body = kpi.monthly_export(session=session, month=month, actor=SYSTEM,
                                          fmt=fmt, level=level)
                written = f"the {level} rows"
            else:
                rows = {name: kpi.monthly_kpi(session=session, month=month, actor=SYSTEM,
                                              level=name) for name in levels}
                corrections = {name: kpi.monthly_corrections(
                    session=session, month=month, actor=SYSTEM, level=name)
                    for name in levels}
                body = kpi.export_levels(rows, fmt, month, corrections)
                written = ", ".join(f"{len(found)} {name} rows" for name, found in rows.items())
        except ServiceError as error:
            raise click.ClickException(error.detail) from None
    with click.open_file(output, "wb") as handle:
        handle.write(body)
    if output != "-":
        click.echo(f"Wrote {written} of {month} to {output}.", err=True)


@click.command("expire-referrals")
@click.option("--days", type=click.IntRange(min=0), default=None,
              help="Age in days (default: REFERRAL_EXPIRY_DAYS).")
def expire_referrals(days: int | None) -> None:
    """Expire pending referrals older than the configured number of days; re-offer them."""
    days = current_app.config["REFERRAL_EXPIRY_DAYS"] if days is None else days
    with session_scope() as session:
        # Each one its referral allows is re-offered in the same transaction (SPEC section 11).
        count = referrals.expire_pending(session=session, older_than_days=days,
                                         reoffers=extensions.reoffers())
    click.echo(f"Expired {count} pending referrals older than {days} days.")


@click.command("erase-client")
@click.argument("client_ids", nargs=-1, type=click.IntRange(min=1))
@click.option("--by", "by", default=None,
              help="Who asks for it, for the audit entry (default: system).")
@click.option("--register", "show_register", is_flag=True,
              help="Print the erasure register (one line a client erased) and stop.")
@click.option("--replay", type=click.File("r"), default=None,
              help="Erase again every client of a register file (after a restore).")
def erase_client(client_ids: tuple[int, ...], by: str | None, show_register: bool,
                 replay: TextIO | None) -> None:
    """Erase the personal data of clients CLIENT_IDS for good (SPEC section 11)."""
    actor = SYSTEM if by is None else Principal(name=f"cli:{by}", role="admin")
    with session_scope() as session:
        try:
            if show_register:
                for entry in erasure.register(session=session):
                    click.echo(entry.line())
                return
            if replay is not None:
                try:
                    entries = [erasure.Registered.parse(line) for line in replay if line.strip()]
                except ValueError:
                    raise click.ClickException(
                        f"{replay.name} is not an erasure register (erase-client --register "
                        "writes one).") from None
                erased, skipped = erasure.replay(session=session, entries=entries, actor=actor)
                click.echo(f"Erased {erased} clients again; {skipped} were erased already, "
                           "gone, or another client now has the id.")
                return
            if not client_ids:
                raise click.UsageError("Name at least one client id (or --register, --replay).")
            for client_id in client_ids:
                done = erasure.erase(session=session, client_id=client_id, actor=actor)
                if done.already_erased:
                    click.echo(f"Client {client_id} was erased already.")
                    continue
                click.echo(f"Erased client {client_id} ({done.rows_changed} rows changed).")
                if done.kpi_reasons_kept:
                    click.echo(f"Kept as they are (closed months' exports may hold them): the "
                               f"reasons of KPI corrections "
                               f"{', '.join(map(str, done.kpi_reasons_kept))} repeat the "
                               "client's data.", err=True)
        except ServiceError as error:
            raise click.ClickException(error.detail) from None


@click.command("purge-personal-data")
@click.option("--older-than", "days", required=True, type=click.IntRange(min=0),
              help="Days without activity (a referral made or moved, a visit, a lead).")
def purge_personal_data(days: int) -> None:
    """Erase every client with nothing open and no activity for --older-than days."""
    with session_scope() as session:
        count = erasure.purge(session=session, older_than_days=days, actor=SYSTEM)
    click.echo(f"Erased the personal data of {count} clients with nothing open and no "
               f"activity for {days} days.")


def init_app(app: Flask) -> None:
    """Register the commands."""
    for command in (db_cli, create_api_key, revoke_api_key, create_user, set_password,
                    deactivate_user, import_organizations, import_people,
                    seed_demo, deliver_webhooks, webhooks_status, webhooks_requeue, backup_database,
                    restore_database, kpi_export, expire_referrals, erase_client,
                    purge_personal_data):
        _with_app_context(command)
        app.cli.add_command(command)


def _with_app_context(command: click.Command) -> None:
    """Run a plain click command inside the app context (once, however many apps are built)."""
    if isinstance(command, click.Group) or getattr(command, "_has_app_context", False):
        return
    command.callback = with_appcontext(command.callback)
    command._has_app_context = True
