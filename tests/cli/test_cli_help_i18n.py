"""`custody ... --help` in the officer's language (Click's way, cli/i18n.py): --lang, else the locale,
else the agency's default (zh-CN); every command's and option's help has its zh-CN translation, and
Click's own words ("Usage:", "Options", its errors) follow too. In-process (Click's CliRunner)."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from archive import i18n
from archive.config import get_settings
from cli.i18n import commands, short_help, translate_help
from cli.i18n_extract import click_help, help_msgid
from cli.main import main
from tests.conftest import ROOT

# The locale of each case is given explicitly.
BASE = {"LC_ALL": "", "LC_MESSAGES": "", "LANGUAGE": ""}


@pytest.fixture(autouse=True)
def chinese_agency(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An agency that keeps the default language (the suite otherwise runs in English)."""
    monkeypatch.setenv("CUSTODY_LANGUAGE", "zh-CN")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str, **env: str) -> click.testing.Result:
    with i18n.use_language(None):  # the command's choice stays inside it
        return CliRunner().invoke(
            main, list(args), env={**BASE, **env}, catch_exceptions=False, prog_name="custody"
        )


def test_dock_help_in_the_locale_language_and_with_lang() -> None:
    zh = run("dock", "--help", LANG="zh_CN.UTF-8")
    assert zh.exit_code == 0
    assert zh.output.startswith("用法：")
    assert "将执法记录仪文件夹中的每个文件归档。仅当每个文件均已核验安全时退出码为 0。" in zh.output
    assert "该执法记录仪所属民警的警号。" in zh.output and "[必填]" in zh.output
    assert "执法记录仪当前显示的时间" in zh.output and "显示本帮助并退出。" in zh.output
    assert "Badge number" not in zh.output and "Options" not in zh.output

    en = run("--lang", "en", "dock", "--help", LANG="zh_CN.UTF-8")  # --lang beats the locale
    assert (
        en.output.startswith("Usage:") and "Badge number of the officer whose recorder this is." in en.output
    )
    assert "[required]" in en.output and "警号" not in en.output
    assert run("dock", "--help", LANG="en_US.UTF-8").output.startswith("Usage:")
    # A C locale states no language: the agency's default, Chinese.
    assert run("dock", "--help", LANG="C.UTF-8").output.startswith("用法：")
    # --help is processed before --lang; the language still applies.
    assert run("--help", "--lang", "en", LANG="zh_CN.UTF-8").output.startswith("Usage:")


def test_command_lists_and_click_errors_follow_the_language() -> None:
    zh = run("--help", LANG="zh_CN.UTF-8")
    assert "命令" in zh.output and "选项" in zh.output
    assert "dock          将执法记录仪文件夹中的每个文件归档" in zh.output
    assert "users         账号与令牌" in zh.output
    en = run("--help", LANG="en_US.UTF-8")
    assert "dock          Archive every file of a recorder's folder." in en.output

    missing = run("dock", LANG="zh_CN.UTF-8")
    assert (
        missing.exit_code == 2
        and "错误：" in missing.output
        and "请运行 'custody dock --help' 查看帮助。" in missing.output
    )
    bad = run("users", "add", "x", "--role", "chief", LANG="zh_CN.UTF-8")
    assert "'--role' 的值无效：'chief' is not one of 'officer'" in bad.output
    assert "Invalid value for '--role'" in run("--lang", "en", "users", "add", "x", "--role", "chief").output
    assert "no such" not in run("--lang", "zh-CN", "nope").output.lower()


def test_every_command_and_option_has_its_help_in_chinese() -> None:
    """Each command's docstring and each option's help= reaches the catalog (cli/i18n_extract.py) and
    has a zh-CN translation: a new command without one fails here."""
    untranslated = []
    with i18n.use_language("zh-CN"):
        for name, cmd in commands(main):
            texts = [cmd.help, *(getattr(p, "help", None) for p in cmd.params)]
            for text in texts:
                if text and translate_help(text) == help_msgid(text) and any(c.isalpha() for c in text):
                    untranslated.append(f"{name}: {help_msgid(text)[:60]}")
    assert not untranslated, untranslated


def test_the_extractor_finds_the_help_click_shows() -> None:
    source = (ROOT / "cli" / "main.py").read_text(encoding="utf-8")
    found = {message for _line, message in click_help(source)}
    assert "Badge number of the officer whose recorder this is." in found
    assert "Archive every file of a recorder's folder. Exit 0 only if every file is verified safe." in found
    assert help_msgid(main.commands["dock"].help or "") in found
    # the catalog holds them (make i18n)
    pot = (ROOT / "archive" / "locale" / "zh_CN" / "LC_MESSAGES" / "custody.po").read_text(encoding="utf-8")
    assert 'msgid "Serial number of the recorder."' in pot


@pytest.mark.parametrize(
    ("text", "limit", "short"),
    [
        ("Accounts and tokens.", 45, "Accounts and tokens."),
        ("Run the API, the workers and the scheduler (all by default).", 30, "Run the API, the workers..."),
        ("账号与令牌。其他说明。", 45, "账号与令牌"),
        ("导出案件 CASE（案件 ID 或编号）的证据包：已关联的音像记录", 20, "导出案件 CASE（案..."),
    ],
)
def test_short_help_cuts_by_terminal_columns(text: str, limit: int, short: str) -> None:
    assert short_help(text, limit) == short
