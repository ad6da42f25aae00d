"""ledger_addr (issue 10, finding 6): each event's key for the commitment to its client address

Events written from now on are hashed into the custody log as version 2 leaves, which hold
HMAC-SHA256(addr_key, client_addr) instead of the address. Rows already there keep ``addr_key``
NULL and their version 1 leaves (which hold the address), so the existing tree, its signed
checkpoints and the exports made from it stay verifiable. Adding a nullable column with no default
rewrites no row: the append-only triggers on ``events`` are not touched.

Revision ID: 0014_ledger_addr
Revises: 0010_i18n
Create Date: 2026-12-02 03:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0014_ledger_addr"
down_revision: str | None = "0010_i18n"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN on both PostgreSQL and SQLite (no table copy on SQLite, which
    # would trip the append-only triggers and the legal gate's checks).
    op.add_column("events", sa.Column("addr_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    # Dropping the keys would leave every version 2 leaf uncheckable against its row: refused.
    raise NotImplementedError("0014_ledger_addr cannot be downgraded: version 2 leaves need their keys")
