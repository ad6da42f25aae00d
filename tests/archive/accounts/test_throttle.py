"""The authentication throttle's counters in the real Redis: per address, per account, one window."""

from __future__ import annotations

import redis

from archive.accounts.throttle import Limits, Throttle
from archive.config import Settings


def test_limits_windows_and_one_logged_refusal(settings: Settings) -> None:
    r = redis.Redis.from_url(settings.redis_url)
    t = Throttle(r, Limits(window_s=60, max_per_addr=3, max_per_account=2))
    assert t.blocked("10.0.0.1") is None
    assert all(t.failed("10.0.0.1") for _i in range(3))
    blocked = t.blocked("10.0.0.1")
    assert blocked is not None and (blocked.kind, blocked.failures) == ("addr", 3)
    assert 1 <= blocked.retry_after <= 60
    assert t.failed("10.0.0.1") is False  # a racer past the limit: not logged again
    assert t.blocked("10.0.0.2") is None  # other addresses go on

    # Per account: failures naming it from any address.
    assert t.failed("10.0.0.5", "rev1") and t.failed("10.0.0.6", "rev1")
    acct = t.blocked("10.0.0.7", "rev1")
    assert acct is not None and (acct.kind, acct.key) == ("account", "rev1")
    assert t.blocked("10.0.0.7", "rev2") is None

    # The refusal is logged once per window and counter.
    assert t.first_refusal(blocked) is True
    assert t.first_refusal(blocked) is False
    assert t.first_refusal(acct) is True

    t.clear(account="rev1")
    assert t.blocked("10.0.0.7", "rev1") is None


def test_redis_down_lets_requests_through() -> None:
    t = Throttle(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2), Limits(60, 1, 1))
    assert t.blocked("10.0.0.1", "x") is None
    assert t.failed("10.0.0.1", "x") is True
