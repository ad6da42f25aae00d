"""docs/security.md's table of roles and permissions is the code's (archive/access.py ROLE_PERMISSIONS):
the table between the markers is generated from it and compared here, so a permission given or taken in
the code and not in the document (or the reverse) fails. ``CUSTODY_WRITE_DOCS=1`` rewrites the table."""

from __future__ import annotations

import os
import re
from pathlib import Path

from archive import access
from archive.access import ROLE_PERMISSIONS, Permission
from archive.accounts.models import Role

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security.md"
BEGIN = "<!-- roles table: generated from archive/access.py by tests/archive/test_access_docs.py -->"
END = "<!-- end of roles table -->"


def _comments() -> dict[str, str]:
    """Each permission's comment in archive/access.py (``NAME = "value"  # what it allows``)."""
    source = Path(access.__file__).read_text(encoding="utf-8")
    found = re.findall(r'^    ([A-Z_]+) = "[^"]+"(?:  # (.*))?$', source, flags=re.MULTILINE)
    return {name: comment.strip() for name, comment in found}


def table() -> str:
    roles = list(Role)
    comments = _comments()
    head = "| permission | what it allows | " + " | ".join(r.value for r in roles) + " |"
    rule = "|---|---|" + "---|" * len(roles)
    rows = []
    for p in Permission:
        marks = " | ".join("✓" if p in ROLE_PERMISSIONS.get(r, frozenset()) else "" for r in roles)
        rows.append(f"| `{p.value}` | {comments.get(p.name, '')} | {marks} |")
    return "\n".join([head, rule, *rows])


def test_security_doc_table_is_the_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, f"docs/security.md lacks the markers {BEGIN!r} ... {END!r}"
    before, rest = text.split(BEGIN, 1)
    current, after = rest.split(END, 1)
    wanted = "\n" + table() + "\n"
    if os.environ.get("CUSTODY_WRITE_DOCS") == "1":
        DOC.write_text(before + BEGIN + wanted + END + after, encoding="utf-8")
        current = wanted
    assert current == wanted, (
        "docs/security.md's roles table differs from archive/access.py ROLE_PERMISSIONS; "
        "rewrite it with CUSTODY_WRITE_DOCS=1 pytest tests/archive/test_access_docs.py, then read the diff"
    )


def test_every_role_has_permissions_and_every_permission_a_role() -> None:
    assert set(ROLE_PERMISSIONS) == set(Role)
    given = set().union(*ROLE_PERMISSIONS.values())
    assert given == set(Permission), f"permissions no role holds: {set(Permission) - given}"
