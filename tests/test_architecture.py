"""The import contracts in pyproject.toml ([tool.importlinter]) hold, and each one fails when the
code breaks it: proven on a copy of the source tree with one forbidden import added."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("archive", "retention", "api", "workers", "cli", "migrations")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy(tmp: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
    return tmp


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, check=False
    )


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    out = _lint(_copy(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 kept, 0 broken" in out.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("archive/clock.py", "import retention.policy", "Layers: api, workers, cli and migrations over"),
        ("archive/events.py", "import fastapi", "The core imports neither the web framework"),
        ("archive/hashing.py", "import celery", "The core imports neither the web framework"),
        ("retention/policy.py", "import api.ranges", "Layers: api, workers, cli and migrations over"),
        ("api/routers/media.py", "from sqlmodel import select", "Routers run no database queries"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    tree = _copy(tmp_path)
    target = tree / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    out = _lint(tree)
    assert out.returncode != 0, out.stdout
    broken = out.stdout.split("Contracts:")[0]
    assert f"{contract}" in broken and "BROKEN" in broken, out.stdout
