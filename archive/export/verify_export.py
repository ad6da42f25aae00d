#!/usr/bin/env python3
"""Check a Custody evidence export offline. Needs Python 3.9+ and the `cryptography` package only.

    python3 verify_export.py EXPORT.zip [--trusted-keys keys.json]

What it checks, printing one line per check (OK / FAIL) and exiting 1 if anything fails:
  1. the zip is complete (not truncated) and every file listed in index.json is present with the
     SHA-256 and size the index states, and nothing unlisted was added;
  2. index.json is signed by one of the export's public keys (Ed25519 over RFC 8785 canonical JSON),
     and each key's id is the first 16 hex digits of the SHA-256 of the raw public key;
  3. each media item's manifest signature, and that the original, proxy and poster files are the
     bytes the manifest names (SHA-256 and size);
  4. the signed checkpoint of the custody log, and that every custody event in the export is in the
     log tree it signs (RFC 6962/9162 leaf hash and inclusion proof). Client addresses: a version 2
     leaf ("v": 2) holds HMAC-SHA256(key, address) instead of the address; where the export carries
     the address and key (the exporter's own events) the commitment is checked too, elsewhere the
     address stays undisclosed. A version 1 leaf (written before the archive committed to addresses)
     holds the address; where it was withheld, only the leaf's hash is proven to be in the log and
     the entry's other fields rest on the signed index: such entries are counted apart;
  5. the case's own custody history and its text records (records/records.json; records.html is
     the same text for reading) are present, as the signed index lists them;
  6. the legal review (legal/review.json): each version of the proposed decision hashes to the
     SHA-256 it was submitted and logged with; each opinion binds the digest of the version it
     answers and is in the log; an approval has no failed checklist point; every passage of the
     case to a decision (legal.gate.pass in the log) was on a version that needed no review or
     carries an approval binding its digest; every voided approval is logged as voided;
  7. whole-process recording: each recording's corrected span (device start minus clock offset, plus
     duration) and each record's coverage status and gaps are recomputed from records/coverage.json
     and must equal what the archive stated; every signature on a record version in
     records/signatures.json verifies: the archive's countersignature with the export's keys, an
     author's with the author's registered public key, over the version as records.json holds it.
The public keys inside the export prove consistency, not origin: compare the printed key ids with
the ones the agency publishes (its /api/v1/keys), or pass them with --trusted-keys.

This file deliberately repeats the hashing, RFC 8785 and Merkle code of the archive instead of
importing it, so that checking an export does not mean trusting the archive's software.
"""

# ruff: noqa: T201  (a command-line verifier: it talks to a person through print)
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import math
import sys
import zipfile
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# --------------------------------------------------------------------------- RFC 8785 (JCS)

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_MAX_SAFE_INT = 2**53 - 1


def _jcs_string(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            raise ValueError("lone surrogate in string")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _jcs_number(x: float) -> str:
    """ECMAScript Number.prototype.toString, as RFC 8785 section 3.2.2.3 requires."""
    if math.isnan(x) or math.isinf(x):
        raise ValueError("NaN and Infinity are not JSON")
    if x == 0:
        return "0"
    if x < 0:
        return "-" + _jcs_number(-x)
    # repr() is the shortest string that round-trips, closest to x: the same digits ECMAScript picks.
    _, digits, exp = Decimal(repr(x)).as_tuple()
    s = "".join(map(str, digits)).rstrip("0")
    assert isinstance(exp, int)
    exp += len(digits) - len(s)
    s = s.lstrip("0")
    k = len(s)
    n = exp + k  # x = 0.s * 10^n
    if k <= n <= 21:
        return s + "0" * (n - k)
    if 0 < n <= 21:
        return s[:n] + "." + s[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + s
    e = n - 1
    mant = s if k == 1 else s[0] + "." + s[1:]
    return f"{mant}e{'+' if e >= 0 else '-'}{abs(e)}"


def _jcs(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            raise ValueError(f"integer {value} is outside the I-JSON range")
        return str(value)
    if isinstance(value, float):
        return _jcs_number(value)
    if isinstance(value, str):
        return _jcs_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(_jcs_string(k) + ":" + _jcs(value[k]) for k in keys) + "}"
    raise TypeError(f"not JSON: {type(value).__name__}")


def canonical_json(value: Any) -> bytes:
    return _jcs(value).encode("utf-8")


# --------------------------------------------------------------------------- RFC 6962 / 9162


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def inclusion_holds(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# --------------------------------------------------------------------------- the checks


class Checker:
    def __init__(self) -> None:
        self.failures = 0
        self.passed = 0

    def ok(self, msg: str) -> None:
        self.passed += 1
        print(f"OK    {msg}")

    def fail(self, msg: str) -> None:
        self.failures += 1
        print(f"FAIL  {msg}")

    def check(self, cond: bool, good: str, bad: str) -> bool:
        (self.ok if cond else self.fail)(good if cond else bad)
        return cond


def _key_id(pub: Ed25519PublicKey) -> str:
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _load_keys(c: Checker, doc: Any, where: str) -> dict[str, Ed25519PublicKey]:
    keys: dict[str, Ed25519PublicKey] = {}
    for k in doc.get("keys", []):
        pub = serialization.load_pem_public_key(k["public_key_pem"].encode("ascii"))
        if not isinstance(pub, Ed25519PublicKey):
            c.fail(f"{where}: key {k.get('key_id')} is not an Ed25519 key")
            continue
        if c.check(
            _key_id(pub) == k["key_id"],
            f"{where}: key {k['key_id']} matches its public key",
            f"{where}: key id {k['key_id']} does not match its public key ({_key_id(pub)})",
        ):
            keys[k["key_id"]] = pub
    return keys


def _sig_ok(keys: dict[str, Ed25519PublicKey], key_id: str, signature_b64: str, doc: Any) -> bool:
    pub = keys.get(key_id)
    if pub is None:
        return False
    try:
        pub.verify(base64.b64decode(signature_b64, validate=True), canonical_json(doc))
    except (InvalidSignature, ValueError):
        return False
    return True


def _read_json(c: Checker, zf: zipfile.ZipFile, name: str) -> Any:
    try:
        return json.loads(zf.read(name))
    except KeyError:
        c.fail(f"{name} is missing from the export")
    except (ValueError, zipfile.BadZipFile) as exc:
        c.fail(f"{name} is unreadable: {exc}")
    return None


def _digest(zf: zipfile.ZipFile, name: str) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    with zf.open(name) as fh:
        while chunk := fh.read(1024 * 1024):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


# --------------------------------------------------------------------------- whole-process recording
# Repeats archive.coverage.logic.measure and archive.signatures.document.record_document on purpose.


def _when(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    utc = timezone.utc  # noqa: UP017 - this file runs on Python 3.9, which has no datetime.UTC
    return moment.replace(tzinfo=utc) if moment.tzinfo is None else moment.astimezone(utc)


def _merge(spans: list[tuple[datetime, datetime]]) -> list[list[datetime]]:
    out: list[list[datetime]] = []
    for a, b in sorted(s for s in spans if s[1] > s[0]):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def _coverage(
    start: datetime,
    end: datetime,
    merged: list[list[datetime]],
    mode: str | None,
    tol_s: float,
    reason: str,
    required: list[str],
) -> tuple[str, list[tuple[datetime, datetime]]]:
    if start == end:
        inside = [(start, start)] if any(a <= start <= b for a, b in merged) else []
    else:
        inside = [(max(a, start), min(b, end)) for a, b in merged if a < end and b > start]
    tol = timedelta(seconds=tol_s)
    gaps: list[tuple[datetime, datetime]] = []
    if inside:
        cursor = start
        for a, b in inside:
            if a - cursor > tol:
                gaps.append((cursor, a))
            cursor = max(cursor, b)
        if end - cursor > tol:
            gaps.append((cursor, end))
    elif (end - start).total_seconds() > tol_s:
        gaps.append((start, end))
    if mode not in required:
        return "not-required", gaps
    if not inside:
        return ("missing-with-reason" if reason.strip() and mode == "av" else "missing"), gaps
    return ("gaps" if gaps else "covered"), gaps


def _record_document(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "purpose": "custody.record-version.v1",
        "case_id": str(r["case_id"]),
        "record_id": str(r["record_id"]),
        "version": int(r["version"]),
        "stage": str(r["stage"]),
        "doc_kind": str(r["doc_kind"]),
        "title": str(r["title"]),
        "author": str(r["author"]),
        "officers": sorted(str(o) for o in r["officers"]),
        "occurred_from": _when(r["occurred_from"]).isoformat(),
        "occurred_to": _when(r["occurred_to"]).isoformat(),
        "attachments": [str(a) for a in r["attachments"]],
        "body_sha256": hashlib.sha256(str(r["body"]).encode()).hexdigest(),
    }


def _check_whole_process(
    c: Checker,
    zf: zipfile.ZipFile,
    listed: dict[str, Any],
    keys: dict[str, Ed25519PublicKey],
    records: list[dict[str, Any]] | None,
) -> None:
    if "records/coverage.json" in listed:
        cov = _read_json(c, zf, "records/coverage.json") or {}
        spans = []
        for m in cov.get("recordings", []):
            start = _when(m["device_start"]) - timedelta(seconds=float(m["clock_offset_s"]))
            span = (start, start + timedelta(seconds=float(m["duration_s"] or 0)))
            stated = (_when(m["span"][0]), _when(m["span"][1]))
            c.check(
                span == stated,
                f"recording {m['media_id']}: corrected span {span[0].isoformat()} .. {span[1].isoformat()}",
                f"recording {m['media_id']}: corrected span is {span}, the export states {stated}",
            )
            spans.append(span)
        merged = _merge(spans)
        required = list(cov.get("required_modes", ["av", "whole-process"]))
        for r in cov.get("records", []):
            status, gaps = _coverage(
                _when(r["start"]),
                _when(r["end"]),
                merged,
                r["mode"],
                float(r["tolerance_s"]),
                r["reason"],
                required,
            )
            stated_gaps = [(_when(a), _when(b)) for a, b in r["gaps"]]
            c.check(
                (status, gaps) == (r["status"], stated_gaps),
                f"record {r['record_id']} v{r['version']}: coverage recomputed: {status}"
                + (f", {len(gaps)} gap(s)" if gaps else ""),
                f"record {r['record_id']}: coverage recomputes to {status} with {len(gaps)} gap(s), "
                f"the export states {r['status']} with {len(stated_gaps)}",
            )
    if "records/signatures.json" in listed and records is not None:
        doc = _read_json(c, zf, "records/signatures.json") or {}
        authors: dict[str, Ed25519PublicKey] = {}
        for k in doc.get("author_keys", []):
            pub = serialization.load_pem_public_key(k["public_key_pem"].encode("ascii"))
            if isinstance(pub, Ed25519PublicKey) and _key_id(pub) == k["key_id"]:
                authors[k["key_id"]] = pub
            else:
                c.fail(f"author key {k['key_id']} of {k['user_name']} is not the Ed25519 key its id names")
        versions = {(r["record_id"], r["version"]): r for r in records}
        for s in doc.get("signatures", []):
            rec = versions.get((s["record_id"], s["version"]))
            label = f"record {s['record_id']} v{s['version']}"
            if rec is None:
                c.fail(f"{label}: signed by {s['signer']}, but that version is not in records/records.json")
                continue
            pool = keys if s["kind"] == "archive" else authors
            c.check(
                _sig_ok(pool, s["key_id"], s["signature"], _record_document(rec)),
                f"{label}: {s['kind']} signature by {s['signer']} verifies (key {s['key_id']})",
                f"{label}: {s['kind']} signature by {s['signer']} does NOT verify: the text was changed",
            )


def verify(path: str, trusted_keys: str | None = None) -> int:
    c = Checker()
    print(f"Checking {path}")
    try:
        zf = zipfile.ZipFile(path)
        bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        c.fail(f"the export is not a complete zip file (truncated or damaged): {exc}")
        return 1
    with zf:
        if bad is not None:
            c.fail(f"{bad} is damaged inside the zip (CRC mismatch)")
        keys_doc = _read_json(c, zf, "keys.json") or {}
        keys = _load_keys(c, keys_doc, "keys.json")
        if trusted_keys:
            with Path(trusted_keys).open(encoding="utf-8") as fh:
                trusted = _load_keys(c, json.load(fh), "trusted keys")
            keys = {k: v for k, v in keys.items() if k in trusted}
            c.check(
                bool(keys), "the export's keys include a trusted key", "none of the export's keys is trusted"
            )
        index = _read_json(c, zf, "index.json")
        sig = _read_json(c, zf, "index.sig.json")
        if index is None or sig is None:
            return 1
        c.check(
            _sig_ok(keys, sig.get("key_id", ""), sig.get("signature", ""), index),
            f"index.json is signed by key {sig.get('key_id')}",
            f"index.json signature does not verify with key {sig.get('key_id')}: the listing was altered",
        )
        # 1. Completeness: every listed file present with its digest; nothing unlisted.
        present = set(zf.namelist())
        listed = index.get("files", {})
        for name, want in sorted(listed.items()):
            if name not in present:
                c.fail(f"{name} is listed in the index but missing from the export")
                continue
            got_sha, got_size = _digest(zf, name)
            c.check(
                (got_sha, got_size) == (want["sha256"], want["size"]),
                f"{name}: sha256 {got_sha[:16]}..., {got_size} bytes, as listed",
                f"{name}: sha256 {got_sha} ({got_size} bytes) but the index lists "
                f"{want['sha256']} ({want['size']} bytes)",
            )
        for name in sorted(present - set(listed) - {"index.json", "index.sig.json"}):
            if not name.endswith("/"):
                c.fail(f"{name} is in the export but not in the signed index (added afterwards)")
        # 2. Manifests and the media files they sign.
        media_ids = []
        for item in index.get("media", []):
            mid = item["media_id"]
            media_ids.append(mid)
            signed = _read_json(c, zf, f"media/{mid}/manifest.json")
            if signed is None:
                continue
            manifest = signed["manifest"]
            c.check(
                _sig_ok(keys, signed["key_id"], signed["signature"], manifest)
                and manifest.get("media_id") == mid,
                f"media {mid}: manifest signature verifies (key {signed['key_id']})",
                f"media {mid}: manifest signature does not verify: the manifest was altered or replaced",
            )
            files = {f["role"]: f["path"] for f in item.get("files", [])}
            want = [("original", manifest["original"]["sha256"], manifest["original"]["size"])]
            want += [(d["kind"], d["sha256"], d["size"]) for d in manifest.get("derivatives", [])]
            for role, sha, size in want:
                name = files.get(role)
                if name is None or name not in present:
                    c.fail(f"media {mid}: the {role} named in the manifest is not in the export")
                    continue
                got_sha, got_size = _digest(zf, name)
                c.check(
                    (got_sha, got_size) == (sha, size),
                    f"media {mid}: {role} is the signed file (sha256 {sha[:16]}..., {size} bytes)",
                    f"media {mid}: {role} has sha256 {got_sha} but the signed manifest says {sha}",
                )
        # 3. Custody log: checkpoint signature, then every event's inclusion.
        cp = _read_json(c, zf, "log/checkpoint.json")
        evs = _read_json(c, zf, "log/events.json")
        if cp is None or evs is None:
            return 1
        body = cp["body"]
        c.check(
            _sig_ok(keys, cp["key_id"], cp["signature"], body),
            f"log checkpoint (size {body['tree_size']}, root {body['root_hash'][:16]}..., "
            f"{body['timestamp']}) is signed by key {cp['key_id']}",
            "log checkpoint signature does not verify",
        )
        pinned = index.get("checkpoint", {})
        c.check(
            (pinned.get("tree_size"), pinned.get("root_hash")) == (body["tree_size"], body["root_hash"]),
            "the signed index names this checkpoint",
            "log/checkpoint.json is not the checkpoint the signed index names",
        )
        root = bytes.fromhex(body["root_hash"])
        size = body["tree_size"]
        _check_events(c, evs, size, root)
        case = index.get("case") or {}
        if isinstance(case, dict) and case.get("id"):
            label = f"case {case.get('number')} ({case['id']})"
            mine = [
                e for e in evs if (e["leaf"]["subject_type"], e["leaf"]["subject_id"]) == ("case", case["id"])
            ]
            c.check(
                bool(mine),
                f"{label}: custody history included ({len(mine)} events on the case itself)",
                f"{label}: no custody events of the case included",
            )
            records = _read_json(c, zf, "records/records.json")
            want = (index.get("records") or {}).get("versions")
            if records is not None:
                c.check(
                    len(records) == want and all(r.get("case_id") == case["id"] for r in records),
                    f"{label}: {len(records)} text record versions in records/records.json "
                    "(readable copy: records/records.html)",
                    f"{label}: records/records.json holds {len(records)} versions of this case, "
                    f"the signed index says {want}",
                )
            _check_legal(c, zf, index, evs, case, label)
            _check_whole_process(c, zf, listed, keys, records)
        logged = {e["leaf"]["subject_id"] for e in evs if e["leaf"]["subject_type"] == "media"}
        for mid in media_ids:
            c.check(
                mid in logged,
                f"media {mid}: custody history included",
                f"media {mid}: no custody events included",
            )
    print(f"{c.passed} checks passed, {c.failures} failed")
    print("RESULT: OK, the export is intact" if c.failures == 0 else "RESULT: FAILED, see FAIL lines above")
    return 0 if c.failures == 0 else 1


def _address_commitment(key_hex: str, addr: str) -> str:
    return hmac.new(bytes.fromhex(key_hex), addr.encode("utf-8"), hashlib.sha256).hexdigest()


def _check_events(c: Checker, evs: list[Any], size: int, root: bytes) -> None:
    """Every event's inclusion in the signed tree; the address commitments that can be checked."""
    counts = {"open": 0, "committed": 0, "withheld": 0}
    for e in evs:
        leaf = e["leaf"]
        version = leaf.get("v", 1)
        label = f"event {leaf.get('id')} ({leaf.get('at')} {leaf.get('action')} by {leaf.get('actor')})"
        path = [bytes.fromhex(p) for p in e["inclusion_path"]]
        if e.get("withheld"):
            # Only a version 1 leaf may lack a field: a version 2 leaf is always shipped as hashed.
            try:
                stated = bytes.fromhex(str(e.get("leaf_hash", "")))
            except ValueError:
                stated = b""
            ok = (
                version == 1
                and e["withheld"] == ["client_addr"]
                and "client_addr" not in leaf
                and inclusion_holds(e["leaf_index"], size, stated, path, root)
            )
            counts["withheld"] += ok
            c.check(
                ok,
                f"{label}: address withheld (an entry from before addresses were committed); its leaf "
                "hash is in the signed log, its text rests on the signed index",
                f"event {leaf.get('id')} ({leaf.get('action')}) is NOT in the signed log: changed or forged",
            )
            continue
        if version not in (1, 2):
            c.fail(f"event {leaf.get('id')}: unknown leaf version {version!r}")
            continue
        ok = inclusion_holds(e["leaf_index"], size, leaf_hash(canonical_json(leaf)), path, root)
        c.check(
            ok,
            f"{label} is in the signed log",
            f"event {leaf.get('id')} ({leaf.get('action')}) is NOT in the signed log: changed or forged",
        )
        if version == 1:
            counts["open"] += 1
        elif "client_addr_key" in e or "client_addr" in e:
            try:
                opened = _address_commitment(str(e["client_addr_key"]), str(e["client_addr"]))
            except (KeyError, ValueError):
                opened = ""
            same = hmac.compare_digest(opened, str(leaf.get("client_addr_commit", "")))
            counts["open"] += same
            c.check(
                same,
                f"event {leaf.get('id')}: client address {e.get('client_addr')!r} matches its commitment",
                f"event {leaf.get('id')}: client address {e.get('client_addr')!r} and key do NOT match "
                "the commitment in the log: changed or forged",
            )
        else:
            counts["committed"] += 1
    print(
        f"NOTE  custody log: {len(evs)} events; client address shown and checked for {counts['open']}, "
        f"undisclosed (commitment only) for {counts['committed']}, withheld from a version 1 entry "
        f"(hash proven, text not) for {counts['withheld']}"
    )


def _check_legal(c: Checker, zf: zipfile.ZipFile, index: Any, evs: list[Any], case: Any, label: str) -> None:
    want = index.get("legal_review")
    if want is None:
        c.check(
            "legal/review.json" not in zf.namelist(),
            f"{label}: no legal review in this export",
            f"{label}: legal/review.json is present but the signed index does not list a review",
        )
        return
    doc = _read_json(c, zf, "legal/review.json")
    if doc is None:
        return
    subs = {s["id"]: s for s in doc.get("submissions", [])}
    opinions = doc.get("opinions", [])
    c.check(
        doc.get("case_id") == case["id"]
        and len(subs) == want.get("submissions")
        and len(opinions) == want.get("opinions")
        and all(s.get("case_id") == case["id"] for s in subs.values()),
        f"{label}: legal review with {len(subs)} proposed decision versions and {len(opinions)} opinions",
        f"{label}: legal/review.json does not hold what the signed index says ({want})",
    )
    logged = [
        e["leaf"]
        for e in evs
        if (e["leaf"]["subject_type"], e["leaf"]["subject_id"]) == ("case", case["id"])
        and str(e["leaf"]["action"]).startswith("legal.")
    ]

    def in_log(actions: tuple[str, ...], **details: Any) -> bool:
        return any(
            leaf["action"] in actions and all(leaf["details"].get(k) == v for k, v in details.items())
            for leaf in logged
        )

    for s in sorted(subs.values(), key=lambda s: s["version"]):
        covered = s.get("digest_document") or {}
        same = all(covered.get(k) == s.get(k) for k in covered) and covered.get("case_id") == case["id"]
        got = hashlib.sha256(canonical_json(covered)).hexdigest()
        c.check(
            same and got == s["digest"],
            f"{label}: proposed decision v{s['version']} hashes to its SHA-256 {s['digest'][:16]}...",
            f"{label}: proposed decision v{s['version']} does not hash to {s['digest']}: it was altered",
        )
        c.check(
            in_log(("legal.submit", "legal.amend"), digest=s["digest"], version=s["version"]),
            f"{label}: proposed decision v{s['version']} was submitted on the log",
            f"{label}: proposed decision v{s['version']} has no submission in the log",
        )
        if s.get("state") == "voided":
            c.check(
                in_log(("legal.approval.void",), digest=s["digest"]),
                f"{label}: the voided approval of v{s['version']} is on the log",
                f"{label}: v{s['version']} is voided but the log has no legal.approval.void for it",
            )
    approvals = set()
    for o in opinions:
        s = subs.get(o["submission_id"])
        ok = s is not None and o["digest"] == s["digest"]
        if o["outcome"] == "approve":
            ok = ok and bool(o["checklist"]) and all(p.get("result") != "fail" for p in o["checklist"])
            if ok and s is not None:
                approvals.add((s["id"], s["digest"]))
        version = s["version"] if s else "?"
        c.check(
            ok and in_log(("legal.opinion",), digest=o["digest"], outcome=o["outcome"]),
            f"{label}: opinion '{o['outcome']}' by {o['reviewer']} binds v{version} and is on the log",
            f"{label}: opinion '{o['outcome']}' on v{version} does not bind that version or is not logged",
        )
    for leaf in logged:
        if leaf["action"] != "legal.gate.pass":
            continue
        d = leaf["details"]
        s = subs.get(d.get("submission", ""))
        what = d.get("stage") or f"decision record {d.get('record')}"
        ok = s is not None and d.get("digest") == s["digest"]
        ok = ok and s is not None and (not s["required"] or (s["id"], s["digest"]) in approvals)
        c.check(
            ok,
            f"{label}: {what} reached on proposed decision v{d.get('version')}, "
            + ("approved by legal review" if s and s["required"] else "no review required"),
            f"{label}: {what} reached WITHOUT an approval of the version decided (v{d.get('version')})",
        )


def main() -> None:
    ap = argparse.ArgumentParser(description="Check a Custody evidence export offline.")
    ap.add_argument("export", help="the export zip")
    ap.add_argument("--trusted-keys", help="keys.json from the agency's /api/v1/keys, to pin the signer")
    args = ap.parse_args()
    sys.exit(verify(args.export, args.trusted_keys))


if __name__ == "__main__":
    main()
