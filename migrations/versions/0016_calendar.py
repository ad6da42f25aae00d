"""calendar (provisional deadlines): legal review due dates and publicity deadlines that cross a year
the working-day calendar does not know are stored as provisional, with the years that were missing
and the Monday-Friday count, and recomputed when the operator sets the year

Revision ID: 0016_calendar
Revises: 0006_legal_review, 0007_publicity
Create Date: 2026-12-02 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_calendar"
# After the migrations that created the two tables it changes (they are on different branches).
down_revision: str | Sequence[str] | None = ("0006_legal_review", "0007_publicity")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = (("legal_submissions", "due"), ("publicity_decisions", "deadline"))


def upgrade() -> None:
    for table, prefix in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(f"{prefix}_provisional", sa.Boolean(), server_default=sa.false(), nullable=False)
            )
            batch_op.add_column(
                sa.Column(f"{prefix}_missing_years", sa.JSON(), server_default="[]", nullable=False)
            )
            batch_op.add_column(sa.Column(f"{prefix}_weekdays", sa.Date(), nullable=True))


def downgrade() -> None:
    for table, prefix in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column(f"{prefix}_weekdays")
            batch_op.drop_column(f"{prefix}_missing_years")
            batch_op.drop_column(f"{prefix}_provisional")
