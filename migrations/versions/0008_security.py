"""security (issue 10): officers on a case; pending auto-links and their confirmation

Revision ID: 0008_security
Revises: 0002_cases
Create Date: 2026-12-01 22:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008_security"
down_revision: str | None = "0002_cases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_officers",
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("badge", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("added_by", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column("added_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("case_id", "badge"),
    )
    with op.batch_alter_table("case_officers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_officers_badge"), ["badge"], unique=False)
    # Officers named by existing records were put there by the records' writers: they stay on their
    # cases (the rule keeps working for cases already open), recorded as carried over.
    op.execute(
        "INSERT INTO case_officers (case_id, badge, reason, added_by, added_at) "
        "SELECT DISTINCT r.case_id, o.badge, 'named by a record before issue 10', 'system:migration', "
        "CURRENT_TIMESTAMP FROM case_record_officers o JOIN case_records r ON r.id = o.record_row"
    )
    with op.batch_alter_table("case_media", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(
            sa.Column("confirmed_by", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True)
        )
        batch_op.add_column(sa.Column("confirmed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case_media", schema=None) as batch_op:
        batch_op.drop_column("confirmed_at")
        batch_op.drop_column("confirmed_by")
        batch_op.drop_column("pending")
    with op.batch_alter_table("case_officers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_officers_badge"))
    op.drop_table("case_officers")
