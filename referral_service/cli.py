"""Flask CLI commands: thin wrappers over the services."""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from referral_service import migrate
from referral_service.db import session_scope
from referral_service.services import auth, demo, importing
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


@click.command("create-user")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(["admin", "partner"]))
@click.option("--organization", "organization_id", type=int, help="Required for partners.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def create_user(email: str, role: str, organization_id: int | None, password: str) -> None:
    """Create a portal user."""
    with session_scope() as session:
        try:
            user = auth.create_user(session=session, email=email, password=password, role=role,
                                    organization_id=organization_id)
        except ServiceError as error:
            raise click.ClickException(error.detail) from None
        click.echo(f"Created user {user.id} <{user.email}> ({role}).")


@click.command("import-organizations")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def import_organizations(file: str) -> None:
    """Create or update organizations from a CSV or JSON-lines FILE (by external_ref)."""
    with open(file, encoding="utf-8-sig", newline="") as handle:
        total = sum(1 for _ in handle) - (0 if file.lower().endswith((".jsonl", ".json",
                                                                      ".ndjson")) else 1)
    with open(file, encoding="utf-8-sig", newline="") as handle, session_scope() as session, \
            click.progressbar(length=max(total, 0), label="Importing", file=sys.stderr) as bar:
        report = importing.import_organizations(
            session=session, records=importing.read_lines(handle, file),
            geocoder=current_app.extensions["geocoder"], progress=bar.update,
        )
    for number, reason in report.rejected:
        click.echo(f"line {number}: rejected: {reason}")
    click.echo(f"created {report.created}, updated {report.updated}, "
               f"rejected {len(report.rejected)}")


@click.command("seed-demo")
def seed_demo() -> None:
    """Load a realistic demo data set and print how to sign in."""
    with session_scope() as session:
        result = demo.seed(session=session, geocoder=current_app.extensions["geocoder"])
    if result is None:
        click.echo("Demo data is already there; nothing added.")
        return
    click.echo(f"Seeded {result.organizations} organizations and {result.referrals} referrals.")
    click.echo(f"Head office sign-in: {result.admin_email} / {result.admin_password}")
    click.echo(f"Partner sign-in:     {result.partner_email} / {result.partner_password}")
    click.echo(f"Admin API key (shown once): {result.api_key}")


def init_app(app: Flask) -> None:
    """Register the commands."""
    for command in (db_cli, create_api_key, create_user, import_organizations, seed_demo):
        app.cli.add_command(command)
