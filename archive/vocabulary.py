"""The procedure's vocabulary as data: Chinese and English names beside the English keys the API keeps.

Stage names, document kinds, case kinds, statuses, roles, media states, retention classes: the
keys (``inquiry-transcript``) are the stable API and storage values; the labels (询问笔录 / Inquiry
transcript) are what people read, as named in the national enforcement document formats. They are
data, not gettext messages: ``archive/vocabulary.json`` ships the defaults, one object per domain,
``{key: {language tag: label}}``; a domain package may add its own terms with :func:`register`.
A language missing for a term falls back to English, an unknown key to the key itself.

    label("stage", "filing")             # "立案" in a zh-CN request, "Filing" in an English one
    label("doc_kind", Stage.FILING, "en")
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from archive.i18n import LANGUAGES, current_language

DATA_FILE = Path(__file__).with_name("vocabulary.json")

Terms = dict[str, dict[str, str]]  # key -> {language tag: label}


def _load(path: Path) -> dict[str, Terms]:
    raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, Terms] = {}
    for domain, terms in raw.items():
        if domain.startswith("_"):
            continue
        out[domain] = {str(k): {str(lang): str(v) for lang, v in t.items()} for k, t in terms.items()}
    return out


_VOCABULARY: dict[str, Terms] = _load(DATA_FILE)


def register(domain: str, terms: Mapping[str, Mapping[str, str]]) -> None:
    """Add or extend a domain's terms (a package's own enums: ``register("legal_status", {...})``).
    Each term needs at least ``zh-CN`` and ``en``; tests/test_vocabulary.py checks every enum it lists."""
    for key, t in terms.items():
        missing = [lang for lang in LANGUAGES if not t.get(lang)]
        if missing:
            raise ValueError(f"vocabulary {domain}.{key}: no label for {', '.join(missing)}")
    _VOCABULARY.setdefault(domain, {}).update({str(k): dict(v) for k, v in terms.items()})


def domains() -> list[str]:
    return sorted(_VOCABULARY)


def has(domain: str, key: str) -> bool:
    return str(key) in _VOCABULARY.get(domain, {})


def label(domain: str, key: str | None, language: str | None = None) -> str:
    """The name of ``key`` in ``language`` (default: the active language)."""
    if key is None:
        return ""
    term = _VOCABULARY.get(domain, {}).get(str(key))
    if term is None:
        return str(key)
    lang = language or current_language()
    return term.get(lang) or term.get("en") or str(key)


def labels(domain: str, language: str | None = None) -> dict[str, str]:
    """Every key of ``domain`` with its name, in the data's order (procedural order for stages)."""
    return {key: label(domain, key, language) for key in _VOCABULARY.get(domain, {})}


def term(domain: str, key: str) -> dict[str, str]:
    """Every language's name of one key (for exports that carry both)."""
    return dict(_VOCABULARY.get(domain, {}).get(str(key), {}))
