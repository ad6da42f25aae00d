"""Alembic migrations for every table: the core's (``archive.schema``) and retention's.

A package of its own, at the deployment edge, because it must see every model: ``archive`` never
imports the layers above it (``retention``), so it cannot be the one that registers them.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from archive.config import Settings
from archive.db import private_sqlite_file

MIGRATIONS = Path(__file__).parent


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(settings: Settings) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    url = settings.resolved_database_url()
    if url.startswith("sqlite:///"):
        private_sqlite_file(Path(url.removeprefix("sqlite:///")))  # 0600 in a 0700 folder
    # "heads": domains may add migrations side by side (each from the same parent); all apply.
    command.upgrade(alembic_config(url), "heads")
