"""Cases, text records, links and the case timeline: the domain's public services.

The work is split by concern (``access``, ``cases``, ``records``, ``attachments``, ``linking`` with
the clock correction, ``timeline``); this module is the one name callers import.

Every change writes its custody event through :func:`archive.events.record` in the caller's
transaction, so a change and its log entry commit or vanish together. Services ``flush``; the unit
of work (the request) commits once. Reads that show evidence (a case, its timeline) are logged too.
"""

from archive.cases.access import (
    ATTACHMENT_DEVICE,
    UNLINKABLE,
    get_case,
    linked_clause,
    log_change,
    media_visible,
    require_writer,
    visible_cases_clause,
    visible_media_clause,
)
from archive.cases.attachments import add_attachment, attachment_metadata
from archive.cases.cases import (
    CaseChange,
    CaseInput,
    CaseQuery,
    case_public,
    create_case,
    find_cases,
    set_reviewers,
    update_case,
    view_case,
)
from archive.cases.linking import (
    autolink,
    autolink_media,
    carry_links_to_original,
    corrected_span,
    correction_note,
    device_start,
    find_open_link,
    link_media,
    link_public,
    links,
    make_link,
    overlaps,
    read_links,
    unlink_media,
)
from archive.cases.records import (
    MAX_ATTACHMENTS,
    MAX_OFFICERS,
    RecordInput,
    add_record,
    read_record_versions,
    read_records,
    record_public,
    record_versions,
    records,
    relink_case,
    search,
    search_records,
)
from archive.cases.timeline import timeline

__all__ = [
    "ATTACHMENT_DEVICE",
    "MAX_ATTACHMENTS",
    "MAX_OFFICERS",
    "UNLINKABLE",
    "CaseChange",
    "CaseInput",
    "CaseQuery",
    "RecordInput",
    "add_attachment",
    "add_record",
    "attachment_metadata",
    "autolink",
    "autolink_media",
    "carry_links_to_original",
    "case_public",
    "corrected_span",
    "correction_note",
    "create_case",
    "device_start",
    "find_cases",
    "find_open_link",
    "get_case",
    "link_media",
    "link_public",
    "linked_clause",
    "links",
    "log_change",
    "make_link",
    "media_visible",
    "overlaps",
    "read_links",
    "read_record_versions",
    "read_records",
    "record_public",
    "record_versions",
    "records",
    "relink_case",
    "require_writer",
    "search",
    "search_records",
    "set_reviewers",
    "timeline",
    "unlink_media",
    "update_case",
    "view_case",
    "visible_cases_clause",
    "visible_media_clause",
]
