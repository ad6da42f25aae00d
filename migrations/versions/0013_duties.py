"""duties (issue 10, findings 3 and 4): the device registry, recordings flagged for their device,
two-person approval requests

Revision ID: 0013_duties
Revises: 0010_i18n
Create Date: 2026-12-02 00:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0013_duties"
down_revision: str | None = "0010_i18n"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DEVICE_STATUS = ("unregistered", "registered", "retired")
_FLAG_REASON = ("unregistered-device", "other-officers-device", "retired-device")
_KIND = ("case.unlink", "retention.unflag", "retention.release", "retention.policy")
_STATE = ("pending", "approved", "rejected", "cancelled", "expired")


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "status",
                sa.Enum(*_DEVICE_STATUS, name="devicestatus", native_enum=False, length=32),
                server_default="unregistered",
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("pool", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(
            sa.Column("registered_by", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True)
        )
        batch_op.add_column(sa.Column("registered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "note", sqlmodel.sql.sqltypes.AutoString(length=2000), server_default="", nullable=False
            )
        )
    # Until now the first officer to dock a serial owned it (issue 10, finding 3): no such claim is a
    # registration. Existing devices become unregistered; who docked first is kept in the note (and in
    # the custody log's device.register event). Recordings already archived are not flagged.
    op.execute(
        "UPDATE devices SET note = 'first docked by ' || officer_badge || ' before registration existed "
        "(migration 0013)', officer_badge = NULL WHERE officer_badge IS NOT NULL"
    )
    op.create_table(
        "device_pool_members",
        sa.Column("serial", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("badge", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(["serial"], ["devices.serial"]),
        sa.ForeignKeyConstraint(["badge"], ["officers.badge"]),
        sa.PrimaryKeyConstraint("serial", "badge"),
    )
    op.create_table(
        "device_flags",
        sa.Column("media_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("device_serial", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("officer_badge", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column(
            "reason",
            sa.Enum(*_FLAG_REASON, name="deviceflagreason", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("flagged_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("resolved_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("resolved_by", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True),
        sa.ForeignKeyConstraint(["media_id"], ["media.id"]),
        sa.ForeignKeyConstraint(["device_serial"], ["devices.serial"]),
        sa.PrimaryKeyConstraint("media_id"),
    )
    with op.batch_alter_table("device_flags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_flags_device_serial"), ["device_serial"], unique=False)
    op.create_table(
        "approval_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Enum(*_KIND, name="approvalkind", native_enum=False, length=32), nullable=False),
        sa.Column("subject_type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("subject_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("requested_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column(
            "state", sa.Enum(*_STATE, name="approvalstate", native_enum=False, length=32), nullable=False
        ),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("decision_reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.create_index("ix_approval_requests_subject", ["kind", "subject_id", "state"], unique=False)
        batch_op.create_index(batch_op.f("ix_approval_requests_requested_by"), ["requested_by"], unique=False)
        batch_op.create_index(batch_op.f("ix_approval_requests_state"), ["state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_requests_state"))
        batch_op.drop_index(batch_op.f("ix_approval_requests_requested_by"))
        batch_op.drop_index("ix_approval_requests_subject")
    op.drop_table("approval_requests")
    with op.batch_alter_table("device_flags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_flags_device_serial"))
    op.drop_table("device_flags")
    op.drop_table("device_pool_members")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("note")
        batch_op.drop_column("registered_at")
        batch_op.drop_column("registered_by")
        batch_op.drop_column("pool")
        batch_op.drop_column("status")
