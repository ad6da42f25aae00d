"""Translations: the catalog is complete (every message in the code has a zh-CN translation, with the
same placeholders), languages are chosen per request/command, catalogs load compiled or from source."""

from __future__ import annotations

import contextvars
import io
import os
import shutil
import string
import threading
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from archive import i18n
from archive.config import Settings, get_settings
from archive.i18n import _
from tests.conftest import ROOT

ZH_PO = ROOT / "archive" / "locale" / "zh_CN" / "LC_MESSAGES" / "custody.po"


def extracted() -> dict[str, list[str]]:
    """Every message in the code, as `pybabel extract -F babel.cfg` sees it: msgid -> where."""
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    keywords = {
        "_": None,
        "N_": None,
        "gettext_": None,
        "gettext": None,
        "ngettext": (1, 2),
    }
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        ids = message if isinstance(message, tuple) else (message,)
        for msgid in ids:
            if msgid:
                found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


def catalog(po: Path = ZH_PO) -> dict[str, tuple[str, bool]]:
    """msgid -> (msgstr, fuzzy); plural entries by their singular and plural ids."""
    with po.open("rb") as fh:
        cat = read_po(fh)
    out: dict[str, tuple[str, bool]] = {}
    for m in cat:
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        text = "" if not all(strings) else strings[0]
        for msgid in ids:
            out[msgid] = (text, m.fuzzy)
    return out


def fields(text: str) -> set[str]:
    """The named placeholders of a brace-format message ({name}, {name!r}; {{ }} are literal)."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_message_in_the_code_has_a_zh_cn_translation() -> None:
    messages = extracted()
    assert len(messages) > 50  # the extraction really read the code and the templates
    assert "Play all" in messages and "SAFE" in messages  # a template's and the CLI's
    have = catalog()
    missing = sorted(
        f"{msgid!r} ({messages[msgid][0]})"
        for msgid in messages
        if msgid not in have or not have[msgid][0] or have[msgid][1]
    )
    assert not missing, (
        f"{len(missing)} message(s) without a zh-CN translation (missing, empty or fuzzy). Run `make i18n`, "
        "fill their msgstr in archive/locale/zh_CN/LC_MESSAGES/custody.po (docs/i18n.md):\n  "
        + "\n  ".join(missing)
    )


def test_translations_keep_their_placeholders() -> None:
    """A translation that drops or renames {name} would raise KeyError (or lose a fact) at runtime."""
    wrong = []
    for msgid, (text, _fuzzy) in catalog().items():
        if text and "{" in msgid + text and fields(msgid) != fields(text):
            wrong.append(f"{msgid!r}: {sorted(fields(msgid))} vs {text!r}: {sorted(fields(text))}")
    assert not wrong, "\n".join(wrong)


def test_the_catalogs_compile_cleanly() -> None:
    """What `pybabel compile` (deploy/install.sh) checks: format strings compatible, plural forms."""
    for po in sorted((ROOT / "archive" / "locale").glob("*/LC_MESSAGES/custody.po")):
        with po.open("rb") as fh:
            cat = read_po(fh)
        problems = [f"{po.parent.parent.name}: {m.id!r}: {errors}" for m, errors in cat.check()]
        assert not problems, problems


def test_en_catalog_knows_every_message() -> None:
    en = catalog(ROOT / "archive" / "locale" / "en" / "LC_MESSAGES" / "custody.po")
    assert set(extracted()) <= set(en), "run `make i18n`: the English catalog lags behind the code"


def test_fuzzy_and_empty_count_as_missing(tmp_path: Path) -> None:
    po = tmp_path / "custody.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
        '#, fuzzy\nmsgid "Play all"\nmsgstr "全部播放"\n\nmsgid "Pause all"\nmsgstr ""\n\n'
        'msgid "SAFE"\nmsgstr "已归档"\n',
        encoding="utf-8",
    )
    have = catalog(po)
    assert have["Play all"] == ("全部播放", True) and have["Pause all"] == ("", False)
    # ...and neither is served: gettext falls back to the English msgid.
    import gettext

    t = gettext.GNUTranslations(io.BytesIO(i18n.compile_po(po)))
    assert t.gettext("Play all") == "Play all"
    assert t.gettext("Pause all") == "Pause all"
    assert t.gettext("SAFE") == "已归档"


# ------------------------------------------------------------------------------- choosing


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("en;q=0.5, zh;q=0.8", "zh-CN"),
        ("zh-TW", "zh-CN"),  # the only Chinese catalog
        ("zh-Hans-CN", "zh-CN"),
        ("fr-FR, de;q=0.9", None),  # none of ours: the agency's default applies
        ("fr, en;q=0.1", "en"),
        ("zh;q=0, en;q=0.1", "en"),  # q=0 means "not this one"
        ("*", None),
        ("", None),
        (None, None),
        ("en;q=abc, zh-CN", "en"),  # a malformed quality is read as 1, not an error
    ],
)
def test_accept_language(header: str | None, expected: str | None) -> None:
    assert i18n.negotiate(header) == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LANG": "zh_CN.UTF-8"}, "zh-CN"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "zh_CN.UTF-8", "LC_ALL": "en_GB.UTF-8"}, "en"),
        ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "zh_CN.UTF-8"}, "zh-CN"),
        ({"LANG": "C.UTF-8"}, None),  # a container's locale states no language
        ({"LANG": "C.UTF-8", "LANGUAGE": "zh_CN"}, None),  # as GNU gettext: C ignores LANGUAGE
        ({"LANG": "en_US.UTF-8", "LANGUAGE": "fr:zh_CN:en"}, "zh-CN"),
        ({"LANG": "de_DE.UTF-8"}, None),
        ({}, None),
    ],
)
def test_cli_locale(env: dict[str, str], expected: str | None) -> None:
    assert i18n.from_environment(env) == expected


def test_default_is_chinese_unless_the_agency_says_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUSTODY_LANGUAGE", raising=False)
    get_settings.cache_clear()
    try:
        assert Settings().language == "zh-CN"
        assert i18n.current_language() == "zh-CN"
        assert _("Play all") == "全部播放"
        monkeypatch.setenv("CUSTODY_LANGUAGE", "en_US.UTF-8")
        get_settings.cache_clear()
        assert i18n.current_language() == "en" and _("Play all") == "Play all"
        monkeypatch.setenv("CUSTODY_LANGUAGE", "fr")
        with pytest.raises(ValueError, match="unsupported language 'fr'"):
            Settings()
    finally:
        get_settings.cache_clear()


def test_language_is_scoped_to_its_block_and_shared_by_its_threads() -> None:
    with i18n.use_language("zh-CN"):
        assert _("Play all") == "全部播放"
        with i18n.use_language("en"):
            assert _("Play all") == "Play all"
        assert _("Play all") == "全部播放"
        # FastAPI runs a dependency in a copy of the request's context (a thread): the user's own
        # setting made there must reach the endpoint and the error handler of the same request.
        ctx = contextvars.copy_context()
        worker = threading.Thread(target=ctx.run, args=(i18n.set_language, "en"))
        worker.start()
        worker.join()
        assert i18n.current_language() == "en"
    # ...but never another request's (each request has its own scope).
    with i18n.use_language("zh-CN"):
        assert i18n.current_language() == "zh-CN"
    with pytest.raises(ValueError, match="unsupported"):
        i18n.set_language("klingon")


def test_module_constants_are_translated_where_shown() -> None:
    greeting = i18n.N_("Play all")  # at import time: kept in English, extracted into the catalog
    assert greeting == "Play all"
    with i18n.use_language("zh-CN"):
        assert _(greeting) == "全部播放"
    with i18n.use_language("en"):
        assert _(greeting) == "Play all"
    assert i18n.translate(greeting, "zh-CN") == "全部播放"


def test_a_compiled_catalog_is_used_only_while_it_is_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """.mo files are build products (`pybabel compile` in deploy/install.sh): a missing or stale one
    never serves old text; the .po is compiled in memory instead."""
    locale = tmp_path / "locale"
    shutil.copytree(ROOT / "archive" / "locale", locale)
    monkeypatch.setattr(i18n, "LOCALE_DIR", locale)
    po = locale / "zh_CN" / "LC_MESSAGES" / "custody.po"
    mo = po.with_suffix(".mo")
    mo.unlink(missing_ok=True)
    i18n.translations.cache_clear()
    try:
        assert i18n.translate("Play all", "zh-CN") == "全部播放"  # from the .po, no .mo at all
        mo.write_bytes(i18n.compile_po(po).replace("全部播放".encode(), "全部开播".encode()))
        os.utime(mo, (po.stat().st_mtime + 10, po.stat().st_mtime + 10))
        i18n.translations.cache_clear()
        assert i18n.translate("Play all", "zh-CN") == "全部开播"  # the current .mo
        os.utime(po, (mo.stat().st_mtime + 10, mo.stat().st_mtime + 10))
        i18n.translations.cache_clear()
        assert i18n.translate("Play all", "zh-CN") == "全部播放"  # the .po changed since: not stale text
        po.write_text("this is not a catalog {", encoding="utf-8")
        os.utime(po, (mo.stat().st_mtime + 20, mo.stat().st_mtime + 20))
        i18n.translations.cache_clear()
        assert i18n.translate("Play all", "zh-CN") == "Play all"  # broken: English, not a crash
    finally:
        i18n.translations.cache_clear()


def test_pybabel_compile_writes_what_install_sh_ships(tmp_path: Path) -> None:
    locale = tmp_path / "locale"
    shutil.copytree(ROOT / "archive" / "locale", locale)
    from babel.messages.frontend import CommandLineInterface

    CommandLineInterface().run(["pybabel", "-q", "compile", "-D", "custody", "-d", str(locale)])
    import gettext

    with (locale / "zh_CN" / "LC_MESSAGES" / "custody.mo").open("rb") as fh:
        assert gettext.GNUTranslations(fh).gettext("Pause all") == "全部暂停"


GETTEXT_NAMES = {"_", "N_", "gettext_", "ngettext"}


def test_no_message_hides_where_the_extractor_cannot_see_it() -> None:
    """`pybabel extract` does not look inside f-strings, and cannot extract a computed msgid:
    f"<dt>{_('Author')}</dt>" and _(f"no case {n}") would never reach the catalog. Write
    _("no case {number}").format(number=n), or a translated value put in a variable first."""
    import ast

    offenders = []
    for package in ("archive", "api", "retention", "cli", "workers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                calls = []
                if isinstance(node, ast.JoinedStr):
                    # _("literal") inside an f-string is never extracted; _(CONSTANT) (an N_ mark) is fine.
                    calls = [
                        n
                        for v in node.values
                        for n in ast.walk(v)
                        if isinstance(n, ast.Call)
                        and isinstance(n.func, ast.Name)
                        and n.func.id in GETTEXT_NAMES
                        and n.args
                        and isinstance(n.args[0], ast.Constant)
                    ]
                elif (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in GETTEXT_NAMES
                    and node.args
                    and isinstance(node.args[0], ast.JoinedStr | ast.BinOp)
                ):
                    calls = [node]
                offenders += [f"{path.relative_to(ROOT)}:{c.lineno}" for c in calls]
    assert not offenders, f"messages the extractor cannot see: {sorted(set(offenders))}"


def test_underscore_is_no_throwaway_where_messages_are_translated() -> None:
    """`engine, _, _ = f()` in a function that translates with `_()` makes `_` a local there (unbound
    before the assignment, a tuple member after it): the next `_("...")` crashes. Same at module level.
    Comprehension variables are their own scope and harmless."""
    import ast

    scopes = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)

    def stores(node: ast.AST) -> list[int]:
        found: list[int] = []
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (*scopes, ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Name) and child.id == "_" and isinstance(child.ctx, ast.Store):
                found.append(child.lineno)
            found += stores(child)
        return found

    def calls_underscore(node: ast.AST) -> bool:
        return any(
            isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "_"
            for n in ast.walk(node)
        )

    offenders = []
    for package in ("archive", "api", "retention", "cli", "workers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            if not calls_underscore(tree):
                continue
            where = str(path.relative_to(ROOT))
            offenders += [f"{where}:{line}" for line in stores(tree)]
            for fn in ast.walk(tree):
                if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) and calls_underscore(fn):
                    offenders += [f"{where}:{line}" for line in stores(fn)]
    assert not offenders, f"name the throwaway (_user, _keyring ...) instead of `_`: {offenders}"
