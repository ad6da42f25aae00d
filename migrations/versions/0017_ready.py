"""ready: drafts of probe and derive work done beside verification

Revision ID: 0017_ready
Revises: 0011_ingest
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0017_ready"
down_revision: str | None = "0011_ingest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ingest_drafts",
        sa.Column("media_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("object_etag", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("probe", sa.JSON(), nullable=True),
        sa.Column("probe_reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("derivatives", sa.JSON(), nullable=True),
        sa.Column("derive_reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["media_id"], ["media.id"]),
        sa.PrimaryKeyConstraint("media_id"),
    )


def downgrade() -> None:
    op.drop_table("ingest_drafts")
