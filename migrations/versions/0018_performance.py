"""performance: decision performance (履行情况, versioned) and random-inspection results (双随机抽查结果),
requirement A10 of enforcement publicity

Revision ID: 0018_performance
Revises: 0016_calendar (after 0007_publicity's tables)
Create Date: 2026-12-02 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0018_performance"
down_revision: str | None = "0016_calendar"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=32)


_PERFORMANCE = ("not-due", "fulfilled", "partly", "not-fulfilled", "enforced", "court")
_OUTCOME = ("no-problem", "rectify", "penalised", "referred")


def upgrade() -> None:
    op.create_table(
        "publicity_performance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", _enum("performancestatus", *_PERFORMANCE), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["decision_id"], ["publicity_decisions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("decision_id", "version", name="uq_publicity_performance_version"),
    )
    with op.batch_alter_table("publicity_performance", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_publicity_performance_decision_id"), ["decision_id"], unique=False
        )

    op.create_table(
        "publicity_inspections",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("ref", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("item", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("party_kind", _enum("partykind", "natural-person", "organisation"), nullable=False),
        sa.Column("party_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("inspected_on", sa.Date(), nullable=False),
        sa.Column("result", _enum("inspectionoutcome", *_OUTCOME), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("public_party", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("public_summary", sa.Text(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("state", _enum("inspectionstate", "draft", "published", "withdrawn"), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("published_by", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True),
        sa.Column("published_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("published_on", sa.Date(), nullable=True),
        sa.Column("withdrawn_by", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True),
        sa.Column("withdrawn_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("withdrawn_on", sa.Date(), nullable=True),
        sa.Column("withdrawal_reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ref", name="uq_publicity_inspection_ref"),
    )
    with op.batch_alter_table("publicity_inspections", schema=None) as batch_op:
        batch_op.create_index("ix_publicity_inspections_public", ["state", "published_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("publicity_inspections", schema=None) as batch_op:
        batch_op.drop_index("ix_publicity_inspections_public")
    op.drop_table("publicity_inspections")
    with op.batch_alter_table("publicity_performance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_publicity_performance_decision_id"))
    op.drop_table("publicity_performance")
