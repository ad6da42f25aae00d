"""Page tests in a real browser (Debian's Chromium, headless, through Playwright): one launcher for
every page test. A module uses it with ``pytestmark = [pytest.mark.e2e, NEEDS_CHROMIUM]`` and takes the
``browser`` fixture (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NEEDS_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (deploy/install.sh)"
)


def launch() -> Iterator[Any]:
    """A headless Chromium for one test, closed after it."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()
