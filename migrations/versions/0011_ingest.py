"""ingest: verification checkpoints

Revision ID: 0011_ingest
Revises: 0010_i18n
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011_ingest"
down_revision: str | None = "0010_i18n"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "verify_checkpoints",
        sa.Column("media_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("object_etag", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["media_id"], ["media.id"]),
        sa.PrimaryKeyConstraint("media_id"),
    )


def downgrade() -> None:
    op.drop_table("verify_checkpoints")
