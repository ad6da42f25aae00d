"""Who may do what: one vocabulary of permissions, decided in services.

Routers and tasks never check roles themselves; a service calls :func:`authorize` with the acting
user and the permission its operation needs. Need-to-know rules that depend on the item (a
reviewer sees only the cases assigned to them) live beside the domain (``archive.cases.access``)
and are expressed on top of these permissions.
"""

from __future__ import annotations

from enum import StrEnum

from archive.accounts.models import Role, User
from archive.errors import Forbidden
from archive.i18n import _


class Permission(StrEnum):
    # ingest
    UPLOAD = "media.upload"  # dock recordings (officers: only as themselves)
    UPLOAD_AS_ANYONE = "media.upload.any-officer"  # dock recordings in another officer's name
    UPLOAD_MANAGE_ALL = "media.upload.manage-all"  # see and end uploads someone else started
    # the device registry (issue 10, finding 3): who may dock which recorder
    DEVICE_MANAGE = "device.manage"  # register a recorder to an officer or a pool, retire it
    DEVICE_READ = "device.read"  # list devices and the recordings flagged for their device
    # media and cases
    MEDIA_READ = "media.read"  # within need-to-know (assigned cases, own recordings)
    MEDIA_READ_OWN = "media.read.own"  # the recordings made under your own badge
    MEDIA_READ_ALL = "media.read.all"  # every item, linked or not
    CASE_READ_ASSIGNED = "case.read.assigned"  # the cases assigned to you, and the media linked to them
    CASE_READ_ALL = "case.read.all"  # every case, assigned or not
    CASE_ADMIN = "case.admin"  # open cases, assign reviewers, move stage and status
    CASE_WRITE_ASSIGNED = "case.write.assigned"  # write records/links in cases assigned to you
    EXPORT = "case.export"  # export a case as an evidence package (within need-to-know)
    CASE_OFFICERS_MANAGE = "case.officers.manage"  # put officers on a case (the auto-link rule's scope)
    CASE_LINK_CONFIRM = "case.link.confirm"  # confirm a pending auto-link (needs to see the media)
    # retention
    RETENTION_FLAG = "retention.flag"  # flag a recording with a reason (the rules may keep it longer)
    RETENTION_HOLD = "retention.hold"  # place a legal hold
    RETENTION_HOLD_RELEASE = "retention.hold.release"  # release a legal hold
    RETENTION_POLICY_READ = "retention.policy.read"  # read the retention rules and an item's explanation
    RETENTION_POLICY_SET = "retention.policy.set"  # install new retention rules (with a reason)
    RETENTION_REPORT = "retention.report"  # what becomes deletable soon
    # audit
    AUDIT = "audit"  # custody log, proofs, checkpoints, verification
    # the working-day calendar (operator overrides of holidays and make-up days)
    CALENDAR_SET = "calendar.set"  # override holidays and make-up working days
    # legal review of major enforcement decisions (issue 12)
    LEGAL_READ = "legal.review.read"  # a case's review, within need-to-know
    LEGAL_READ_ALL = "legal.review.read.all"  # lists across cases (overdue reviews)
    LEGAL_SUBMIT = "legal.review.submit"  # submit, amend, withdraw, escalate (the handling side)
    LEGAL_MARK = "legal.case.mark"  # mark a case major by hand
    LEGAL_REVIEW_DECIDE = "legal.review.decide"  # answer the checklist, give the opinion
    LEGAL_COLLECTIVE_DECIDE = "legal.collective.decide"  # record collective discussion
    LEGAL_CATALOGUE_SET = "legal.catalogue.set"  # install the catalogue of decisions needing legal review
    CASE_READ_SUBMITTED = "case.read.submitted"  # cases submitted for legal review, their linked media
    # enforcement publicity (issue 14)
    ROSTER_READ = "publicity.roster.read"  # read the qualified staff roster
    ROSTER_MANAGE = "publicity.roster.manage"  # admins maintain the roster
    PUBLICITY_READ = "publicity.read"  # decisions, performance, inspections, due lists, deliveries, flags
    PUBLICITY_REGISTER = "publicity.decision.register"  # give a case's decision its category and date
    PUBLISH = "publicity.publish"  # redact, approve, withdraw, documents, reports, inspections, performance
    # whole-process recording (issue 13)
    RECORDING_LIST_READ = "recording.list.read"  # read the recording-item list (音像记录事项清单)
    RECORDING_LIST_SET = "recording.list.set"  # install a new recording-item list
    PARTY_WRITE = "party.write"  # name parties of a case (case writers also need case write rights)
    PARTY_READ = "party.read"  # the party view: every case, record and recording of one party
    PARTY_ID_READ = "party.id.read"  # identity document numbers unmasked
    SIGNING_KEY_REGISTER = "signing.key.register"  # register your own Ed25519 public key
    OVERSIGHT = "oversight"  # warnings, statistics, who accessed what
    RESTRICT_MANAGE = "restricted.manage"  # mark records/recordings, grant them to named users
    RESTRICT_LIST = "restricted.list"  # see what is marked and granted (never the content)
    COPYOUT_REQUEST = "copyout.request"  # ask to export a case or download an original
    COPYOUT_APPROVE = "copyout.approve"  # approve someone else's request (调取审批)
    # accounts (issue 10, finding 5): disable, enable, rotate tokens, change roles of other users
    USERS_MANAGE = "users.manage"
    # two-person approval (issue 10, finding 4): a second person approves, never the requester
    APPROVE_UNLINK = "approval.case.unlink"  # unlinking evidence from a case
    APPROVE_UNFLAG = "approval.retention.unflag"  # clearing a permanent retention flag
    APPROVE_RELEASE = "approval.retention.release"  # releasing a legal hold
    APPROVE_POLICY = "approval.retention.policy"  # installing a retention policy
    APPROVALS_READ_ALL = "approval.read.all"  # every request, not only your own and those you may decide


_READERS = {Permission.MEDIA_READ, Permission.RECORDING_LIST_READ, Permission.SIGNING_KEY_REGISTER}
_RECORDS_OFFICE = {
    Permission.RECORDING_LIST_SET,
    Permission.PARTY_WRITE,
    Permission.PARTY_READ,
    Permission.PARTY_ID_READ,
    Permission.RESTRICT_MANAGE,
    Permission.RESTRICT_LIST,
    Permission.COPYOUT_REQUEST,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OFFICER: frozenset({Permission.UPLOAD, Permission.MEDIA_READ_OWN, *_READERS}),
    Role.REVIEWER: frozenset(
        {
            *_READERS,
            Permission.CASE_READ_ASSIGNED,
            Permission.CASE_WRITE_ASSIGNED,
            Permission.EXPORT,
            Permission.RETENTION_FLAG,
            Permission.LEGAL_READ,
            Permission.LEGAL_SUBMIT,
            Permission.PARTY_WRITE,
            Permission.COPYOUT_REQUEST,
        }
    ),
    Role.AUDITOR: frozenset(
        {
            *_READERS,
            Permission.MEDIA_READ_ALL,
            Permission.CASE_READ_ALL,
            Permission.RETENTION_POLICY_READ,
            Permission.AUDIT,
            Permission.LEGAL_READ,
            Permission.LEGAL_READ_ALL,
            Permission.ROSTER_READ,
            Permission.PUBLICITY_READ,
            Permission.PARTY_READ,
            Permission.OVERSIGHT,
            Permission.RESTRICT_LIST,
            Permission.DEVICE_READ,
            Permission.APPROVALS_READ_ALL,
        }
    ),
    Role.RECORDS_MANAGER: frozenset(
        {
            *_READERS,
            Permission.MEDIA_READ_ALL,
            Permission.CASE_READ_ALL,
            Permission.CASE_ADMIN,
            Permission.CASE_OFFICERS_MANAGE,
            Permission.CASE_LINK_CONFIRM,
            Permission.EXPORT,
            Permission.RETENTION_FLAG,
            Permission.RETENTION_HOLD,
            Permission.RETENTION_HOLD_RELEASE,
            Permission.RETENTION_POLICY_READ,
            Permission.RETENTION_POLICY_SET,
            Permission.RETENTION_REPORT,
            Permission.CALENDAR_SET,
            Permission.LEGAL_READ,
            Permission.LEGAL_READ_ALL,
            Permission.LEGAL_SUBMIT,
            Permission.LEGAL_MARK,
            Permission.ROSTER_READ,
            Permission.PUBLICITY_READ,
            Permission.PUBLICITY_REGISTER,
            *_RECORDS_OFFICE,
            Permission.DEVICE_MANAGE,
            Permission.DEVICE_READ,
            Permission.APPROVE_UNLINK,
            Permission.APPROVE_UNFLAG,
            Permission.APPROVE_RELEASE,
            Permission.APPROVE_POLICY,
        }
    ),
    Role.ADMIN: frozenset(
        {
            *_READERS,
            Permission.UPLOAD,
            Permission.UPLOAD_AS_ANYONE,
            Permission.UPLOAD_MANAGE_ALL,
            Permission.MEDIA_READ_ALL,
            Permission.CASE_READ_ALL,
            Permission.CASE_ADMIN,
            Permission.CASE_OFFICERS_MANAGE,
            Permission.CASE_LINK_CONFIRM,
            Permission.EXPORT,
            Permission.RETENTION_FLAG,
            Permission.RETENTION_HOLD,
            Permission.RETENTION_POLICY_READ,
            Permission.RETENTION_REPORT,
            Permission.AUDIT,
            Permission.CALENDAR_SET,
            Permission.LEGAL_READ,
            Permission.LEGAL_READ_ALL,
            Permission.LEGAL_SUBMIT,
            Permission.LEGAL_MARK,
            Permission.LEGAL_CATALOGUE_SET,
            Permission.ROSTER_READ,
            Permission.ROSTER_MANAGE,
            Permission.PUBLICITY_READ,
            Permission.PUBLICITY_REGISTER,
            *_RECORDS_OFFICE,
            Permission.OVERSIGHT,
            Permission.USERS_MANAGE,
            Permission.DEVICE_MANAGE,
            Permission.DEVICE_READ,
            # A second person for what records managers ask; legal holds stay with records managers.
            Permission.APPROVE_UNLINK,
            Permission.APPROVE_UNFLAG,
            Permission.APPROVE_POLICY,
        }
    ),
    # Designated legal staff review; they never submit, so reviewing and handling stay apart.
    Role.LEGAL_REVIEWER: frozenset(
        {
            Permission.CASE_READ_SUBMITTED,
            Permission.LEGAL_READ,
            Permission.LEGAL_READ_ALL,
            Permission.LEGAL_REVIEW_DECIDE,
        }
    ),
    Role.APPROVER: frozenset(
        {
            Permission.CASE_READ_SUBMITTED,
            Permission.LEGAL_READ,
            Permission.LEGAL_READ_ALL,
            Permission.LEGAL_COLLECTIVE_DECIDE,
            # 调取审批 (issue 13): approves another person's copy-out request, never their own.
            *_READERS,
            Permission.COPYOUT_APPROVE,
            Permission.COPYOUT_REQUEST,
        }
    ),
    # Publishes, never changes evidence or cases; reads the decision documents it redacts.
    Role.PUBLISHER: frozenset(
        {
            Permission.ROSTER_READ,
            Permission.PUBLICITY_READ,
            Permission.PUBLICITY_REGISTER,
            Permission.PUBLISH,
        }
    ),
}


def can(user: User, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS.get(user.role, frozenset())


def authorize(user: User, permission: Permission, what: str | None = None) -> None:
    """Raise :class:`Forbidden` (403, logged by the API as a refusal) unless ``user`` holds it.
    ``what`` names the refused operation for the person refused ("role officer may not <what>")."""
    if not can(user, permission):
        if what is not None:
            raise Forbidden(_("role {role} may not {what}").format(role=user.role, what=what))
        raise Forbidden(
            _("role {role} may not do this ({permission})").format(role=user.role, permission=permission)
        )


def actor(user: User | str | None) -> str:
    """The custody log's name for whoever acted: ``user:<name>``, or a ``system:...`` actor."""
    if user is None:
        return "anonymous"
    if isinstance(user, str):
        return user if ":" in user else f"user:{user}"
    return f"user:{user.name}"
