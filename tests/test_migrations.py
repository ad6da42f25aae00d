"""The migrations build exactly the schema the models declare, on PostgreSQL and on SQLite (the embedded
default): a model changed without a migration, or a migration that drifts from its model, fails here
rather than on an agency's server. The differences allowed are deliberate: the full-text search of
case records, which each database does its own way and the models leave out (migration 0002):
PostgreSQL's generated ``search_tsv`` column with its GIN index, SQLite's FTS5 table
``case_records_fts`` and the shadow tables FTS5 keeps beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import archive.schema  # noqa: F401  (every core table on SQLModel.metadata)
import retention.models  # noqa: F401
from archive.config import Settings
from migrations import migrate


def _drift(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), SQLModel.metadata))
    finally:
        engine.dispose()


def _describe(diff: Any) -> str:
    if isinstance(diff, list):  # column modifications come as a list of tuples
        return "; ".join(_describe(d) for d in diff)
    kind = diff[0]
    if kind in ("add_column", "remove_column"):
        return f"{kind} {diff[2]}.{diff[3].name}"
    if kind in ("add_index", "remove_index"):
        return f"{kind} {diff[1].name}"
    if kind in ("add_table", "remove_table"):
        return f"{kind} {diff[1].name}"
    return f"{kind} {diff[1:]}"


def test_postgresql_schema_is_the_models(database_url: str) -> None:
    # database_url: a clone of the template every test uses, built by running every migration
    found = sorted(_describe(d) for d in _drift(database_url))
    assert found == ["remove_column case_records.search_tsv", "remove_index ix_case_records_search"], found


def test_sqlite_schema_is_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'custody.db'}"
    migrate(Settings(database_url=url))
    found = sorted(_describe(d) for d in _drift(url))
    fts = [d for d in found if d.startswith("remove_table case_records_fts")]
    assert "remove_table case_records_fts" in fts and len(fts) >= 2, found  # the table and its shadows
    assert [d for d in found if d not in fts] == []
