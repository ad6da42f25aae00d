"""The legal review in the case export: ``legal/review.json`` (what the offline verifier checks) and
``legal/review.html`` (the same, readable; no scripts, everything escaped)."""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from archive import i18n, localtime
from archive.cases.models import Case
from archive.i18n import _
from archive.legal.catalogue import MARKS, default_catalogue
from archive.legal.models import (
    OPINION_LABELS,
    LegalAnswer,
    LegalEscalation,
    LegalOpinion,
    LegalSubmission,
    Opinion,
)
from archive.legal.services import case_marks, digest_document
from archive.workdays import provisional


def export_document(session: Session, case_id: str) -> dict[str, Any]:
    """The case's whole legal review for the evidence export (``legal/review.json``): every version
    of the proposed decision with its digest document, answers, opinions, escalations and marks."""
    subs = list(
        session.exec(
            select(LegalSubmission)
            .where(LegalSubmission.case_id == case_id)
            .order_by(col(LegalSubmission.version))
        )
    )
    ids = [s.id for s in subs]
    answers = (
        list(
            session.exec(
                select(LegalAnswer)
                .where(col(LegalAnswer.submission_id).in_(ids))
                .order_by(col(LegalAnswer.id))
            )
        )
        if ids
        else []
    )
    opinions = (
        list(session.exec(select(LegalOpinion).where(col(LegalOpinion.submission_id).in_(ids))))
        if ids
        else []
    )
    escalations = (
        list(session.exec(select(LegalEscalation).where(col(LegalEscalation.submission_id).in_(ids))))
        if ids
        else []
    )
    return {
        "case_id": case_id,
        "submissions": [{**s.model_dump(mode="json"), "digest_document": digest_document(s)} for s in subs],
        "answers": [a.model_dump(mode="json") for a in answers],
        "opinions": [o.model_dump(mode="json") for o in opinions],
        "escalations": [e.model_dump(mode="json") for e in escalations],
        "marks": [m.model_dump(mode="json") for m in case_marks(session, case_id)],
    }


def export_files(session: Session, case: Case) -> dict[str, bytes]:
    """``legal/review.json`` (checked by the offline verifier) and ``legal/review.html`` (the same,
    readable; no scripts, everything escaped) for the case export. Empty when the case has no review."""
    doc = export_document(session, case.id)
    if not doc["submissions"] and not doc["marks"]:
        return {}
    return {
        "legal/review.json": json.dumps(doc, indent=1, ensure_ascii=False).encode("utf-8"),
        "legal/review.html": review_html(case, doc),
    }


def export_index(files: dict[str, bytes]) -> dict[str, int] | None:
    """What the signed index says about the review, so that dropping it from the export is detected."""
    if not files:
        return None
    doc = json.loads(files["legal/review.json"])
    return {"submissions": len(doc["submissions"]), "opinions": len(doc["opinions"])}


def _when(value: Any) -> str:
    """A stored UTC time as people read it: the agency's local time, the zone named."""
    if not value:
        return "-"
    try:
        return localtime.format_local(datetime.fromisoformat(str(value)))
    except ValueError:
        return str(value)


def _provisional(s: dict[str, Any]) -> str:
    """ " (provisional: the 2027 holiday arrangement is not loaded)" after a provisional due date."""
    if not s.get("due_provisional"):
        return ""
    return " (" + provisional.note(s.get("due_missing_years") or []) + ")"


def review_html(case: Case, doc: dict[str, Any]) -> bytes:
    """The legal review readable without software, in the exporting user's language, times in the
    agency's zone with the zone named."""
    e = html.escape
    chinese = i18n.current_language() == "zh-CN"
    catalogue = default_catalogue()
    points = {p.key: p for p in catalogue.checklist}
    answers_words = {"pass": _("pass"), "fail": _("fail"), "n/a": _("not applicable")}
    # Translated first: pybabel cannot see a _() inside an f-string.
    t = {
        "legal_review": _("Legal review"),
        "marked": _("Marked"),
        "proposed": _("Proposed decision"),
        "rule": _("rule"),
        "due": _("due"),
        "submitted_by": _("submitted by"),
        "legal_basis": _("Legal basis"),
        "opinion": _("Opinion"),
        "collective": _("Collective discussion"),
        "pending": _("pending"),
    }

    def kind_name(key: str) -> str:
        kind = catalogue.decision_kinds.get(key)
        return (kind.label_zh if chinese else kind.label) if kind else key

    def outcome_name(key: str) -> str:
        try:
            label, zh = OPINION_LABELS[Opinion(key)]
        except ValueError:
            return key
        return zh if chinese else _(label)

    parts = [
        f"<!doctype html><html lang='{e(i18n.current_language())}'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' "
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{e(t['legal_review'])} {e(case.number)}</title>",
        f"<style>body{{font-family:{i18n.CJK_SERIF};max-width:50em;margin:2em auto}}"
        "pre{white-space:pre-wrap}</style>",
        "</head><body>",
        f"<h1>{e(t['legal_review'])}: {e(case.number)} {e(case.title)}</h1>",
    ]
    for m in doc["marks"]:
        parts.append(
            f"<p>{e(t['marked'])} {e(m['mark'])} ({e(MARKS.get(m['mark'], ''))}): {e(m['reason'])}</p>"
        )
    opinions = {o["submission_id"]: o for o in doc["opinions"]}
    answers: dict[str, list[dict[str, Any]]] = {}
    for a in doc["answers"]:
        answers.setdefault(a["submission_id"], []).append(a)
    for s in doc["submissions"]:
        parts += [
            f"<section><h2>{e(t['proposed'])} v{s['version']}: "
            f"{e(kind_name(s['decision_kind']))} ({e(s['state'])})</h2>",
            f"<p>SHA-256 {e(s['digest'])}; {e(t['rule'])} {e(s['rule_id'] or '-')}; "
            f"{e(t['due'])} {e(s['due'] or '-')}{e(_provisional(s))}; "
            f"{e(t['submitted_by'])} {e(s['submitted_by'])} "
            f"{e(_when(s['submitted_at']))}</p>",
            f"<p>{e(s['attestation'])}</p>",
            f"<p>{e(t['legal_basis'])}: {e('; '.join(s['legal_basis']))}</p><pre>{e(s['facts'])}</pre><ul>",
        ]
        for a in answers.get(s["id"], []):
            point = points.get(a["point"])
            label = (point.label_zh if chinese else point.label) if point else a["point"]
            result = answers_words.get(a["result"], a["result"])
            parts.append(
                f"<li>{e(label)}: {e(result)} {e(a['note'])} "
                f"({e(a['reviewer'])} {e(_when(a['answered_at']))})</li>"
            )
        parts.append("</ul>")
        o = opinions.get(s["id"])
        if o is not None:
            parts.append(
                f"<p><b>{e(t['opinion'])}: {e(outcome_name(o['outcome']))}</b> "
                f"({e(o['reviewer'])}, {e(_when(o['decided_at']))}): "
                f"{e(o['reasons'])}. {e(o['attestation'])}</p>"
            )
        parts.append("</section>")
    for x in doc["escalations"]:
        parts.append(
            f"<section><h2>{e(t['collective'])}</h2><p>{e(x['reason'])}</p>"
            f"<p>{e(x['outcome'] or t['pending'])}: {e(x['outcome_reasons'] or '')} "
            f"({e(', '.join(x['participants']))})</p></section>"
        )
    parts.append("</body></html>")
    return "\n".join(parts).encode("utf-8")
