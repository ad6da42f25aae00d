"""`custody users list|disable|enable|rotate|role` in their own processes, as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive.accounts import services as accounts
from archive.accounts.errors import AuthFailed
from archive.db import session_scope
from archive.models import Event
from tests.conftest import ROOT


def custody(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "--lang", "en", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def _ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_users_lifecycle_from_the_command_line(env: dict[str, str], engine: Engine) -> None:
    token = _ok(custody(env, "users", "add", "rev1", "--role", "reviewer")).splitlines()[-1]
    _ok(custody(env, "users", "add", "root", "--role", "admin"))
    listed = _ok(custody(env, "users", "list"))
    assert "rev1  Case reviewer  enabled  token expires " in listed and "last seen not yet" in listed
    assert "CST (UTC+08:00)" in listed  # the agency's local time, its zone named
    assert "2 users" in listed

    _ok(custody(env, "users", "disable", "rev1", "--reason", "suspended pending inquiry"))
    with session_scope(engine) as s:
        try:
            accounts.authenticate(s, token)
            raise AssertionError("a disabled user's token still works")
        except AuthFailed as exc:
            assert exc.error_code == "auth.account_disabled"
    shown = json.loads(_ok(custody(env, "users", "list", "--json")))
    assert {u["name"]: u["state"] for u in shown["users"]} == {"rev1": "disabled", "root": "enabled"}
    _ok(custody(env, "users", "enable", "rev1"))

    out = _ok(custody(env, "users", "rotate", "rev1", "--reason", "token leaked", "--as", "root"))
    new = out.splitlines()[-1]
    assert new.startswith("cus_") and new != token and "the old token no longer works" in out
    with session_scope(engine) as s:
        assert accounts.authenticate(s, new).name == "rev1"

    _ok(custody(env, "users", "role", "rev1", "legal-reviewer", "--reason", "joined the legal office"))
    shown = json.loads(_ok(custody(env, "users", "list", "--json")))
    assert {u["name"]: u["role"] for u in shown["users"]}["rev1"] == "legal-reviewer"

    # Refusals name what is wrong and change nothing.
    r = custody(env, "users", "disable", "nobody", "--reason", "x")
    assert r.returncode == 1 and "no user named 'nobody'" in r.stderr
    r = custody(env, "users", "role", "rev1", "emperor", "--reason", "x")
    assert r.returncode == 2 and "emperor" in r.stderr
    r = custody(env, "users", "role", "rev1", "admin")
    assert r.returncode == 2 and "--reason" in r.stderr
    r = custody(env, "users", "disable", "root", "--reason", "x", "--as", "rev1")
    assert r.returncode == 1 and "may not" in r.stderr
    r = custody(env, "users", "disable", "root", "--reason", "x", "--as", "root")
    assert r.returncode == 1 and "their own account" in r.stderr

    with Session(engine) as s:
        logged = [
            (e.action, e.actor)
            for e in s.exec(
                select(Event).where(col(Event.action).startswith("user.")).order_by(col(Event.id))
            )
        ]
    assert logged == [
        ("user.create", "system:cli"),
        ("user.create", "system:cli"),
        ("user.disable", "system:cli"),
        ("user.enable", "system:cli"),
        ("user.token_rotate", "user:root"),
        ("user.role", "system:cli"),
    ]
