"""Single sign-on on the review page, in Debian's Chromium: the page's sign-in link goes to the
agency's OpenID Connect provider (a real one, tests/oidc_provider.py), its login form brings the
browser back to the case with a page session, the token leaves the address bar at once, and
"Sign out" ends the session on the server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from archive.models import Event
from tests.api.test_sso_oidc import World, world  # noqa: F401  (fixture)
from tests.browser import NEEDS_CHROMIUM
from tests.case_factories import new_case

pytestmark = [
    pytest.mark.e2e,
    NEEDS_CHROMIUM,
]


def test_sign_in_on_the_review_page_and_out(
    world: World,  # noqa: F811
    make_user: Any,
    engine: Engine,
    browser: Any,
) -> None:
    clerk = make_user("clerk", "records-manager")
    make_user("u-reviewer", "reviewer")
    case = new_case(world.api.url, clerk, number="2024-0777", reviewers=["u-reviewer"])
    page = browser.new_context(locale="en-US").new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(f"{world.api.url}/cases/{case['id']}")
    link = page.locator("#login-sso")
    link.wait_for(state="visible", timeout=20_000)
    link.click()
    # The provider's own login page (a real one would ask for a second factor too).
    page.wait_for_url(f"{world.idp}/authorize?*", timeout=20_000)
    page.fill("input[name=username]", "u-reviewer")
    page.fill("input[name=password]", "pw-reviewer")
    page.click("button")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    assert page.url == f"{world.api.url}/cases/{case['id']}"  # the token left the address bar
    assert "2024-0777" in page.locator("#case-title").inner_text()
    token = page.evaluate("sessionStorage.getItem('custody_token')")
    assert token.startswith("cps_")
    assert (
        httpx.get(f"{world.api.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )

    page.click("#logout")
    page.locator("#login").wait_for(state="visible", timeout=20_000)
    assert page.evaluate("sessionStorage.getItem('custody_token')") is None
    r = httpx.get(f"{world.api.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert (r.status_code, r.json()["code"]) == (401, "auth.session_ended")
    with Session(engine) as s:
        actions = [
            e.action
            for e in s.exec(
                select(Event).where(col(Event.action).startswith("session.")).order_by(col(Event.id))
            )
        ]
    assert actions == ["session.login", "session.open", "session.logout"]
    assert not errors, errors
