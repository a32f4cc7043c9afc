"""Alembic, driven from the app: the same migrations for SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from flask import Flask

from referral_service.db import database_url, get_engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(app: Flask) -> Config:
    """Return an Alembic config bound to the app's database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url(app).replace("%", "%%"))
    return config


def upgrade(app: Flask, revision: str = "head") -> None:
    """Bring the database schema up to `revision`."""
    config = alembic_config(app)
    with get_engine(app).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def revision(app: Flask, message: str) -> None:
    """Autogenerate a new migration from the models."""
    config = alembic_config(app)
    with get_engine(app).begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
