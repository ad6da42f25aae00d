"""Throttling failed authentication, per client address and per account, counted in Redis.

A failure (a missing, unknown, expired, disabled or ended credential; a refused sign-in) increments
the counter of the client address and, when the credential named one, of the account. A counter's
window starts at its first failure and lasts ``Settings.auth_fail_window_s``. Once a counter has
reached its limit, every authentication from that address (or as that account) is refused with 429
and ``Retry-After`` until the window ends, before any token is looked at: nothing more can be tried
from there, correct tokens included, while every other address goes on as usual.

What reaches the custody log is bounded: each failure up to the limit is logged as it happens
(``auth.denied``), the refusal itself once per window (``auth.throttled``), and nothing per
request after that. Several API processes share the counters (Redis), as the public face's rate
limit does. Redis is the one store every profile runs (the embedded one too); should it be down,
the throttle lets requests through (authentication itself still works from the database) and says
so in the process log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

log = logging.getLogger("custody.accounts.throttle")
_PREFIX = "custody:auth-fail:"


@dataclass(frozen=True)
class Limits:
    window_s: int
    max_per_addr: int
    max_per_account: int


@dataclass(frozen=True)
class Blocked:
    """A refusal: which counter (``addr`` or ``account``), its key, and when it ends."""

    kind: str
    key: str
    retry_after: int
    failures: int


class Throttle:
    def __init__(self, r: redis.Redis, limits: Limits) -> None:
        self.r = r
        self.limits = limits

    def _limit(self, kind: str) -> int:
        return self.limits.max_per_addr if kind == "addr" else self.limits.max_per_account

    def _count_key(self, kind: str, key: str) -> str:
        return f"{_PREFIX}{kind}:{key}"

    def blocked(self, addr: str, account: str | None = None) -> Blocked | None:
        """The refusal due to ``addr`` (or ``account``) having failed too often in its window, if any."""
        wanted = [("addr", addr)] + ([("account", account)] if account else [])
        try:
            pipe = self.r.pipeline(transaction=False)
            for kind, key in wanted:
                pipe.get(self._count_key(kind, key))
                pipe.ttl(self._count_key(kind, key))
            answers = pipe.execute()
        except redis.RedisError as exc:
            log.warning("authentication throttle unavailable (%s): request let through", type(exc).__name__)
            return None
        for i, (kind, key) in enumerate(wanted):
            count, ttl = answers[2 * i], answers[2 * i + 1]
            failures = int(count or 0)
            if failures >= self._limit(kind):
                return Blocked(kind, key, max(int(ttl), 1) if ttl and ttl > 0 else 1, failures)
        return None

    def failed(self, addr: str, account: str | None = None) -> bool:
        """Count one failure; whether it was within the limits (False: a request that raced past the
        check after the limit was reached; its refusal is not logged again)."""
        wanted = [("addr", addr)] + ([("account", account)] if account else [])
        try:
            pipe = self.r.pipeline(transaction=True)
            for kind, key in wanted:
                k = self._count_key(kind, key)
                pipe.incr(k)
                pipe.expire(k, self.limits.window_s, nx=True)  # the window starts at the first failure
            answers = pipe.execute()
        except redis.RedisError as exc:
            log.warning("authentication throttle unavailable (%s): failure not counted", type(exc).__name__)
            return True
        return all(int(answers[2 * i]) <= self._limit(kind) for i, (kind, _key) in enumerate(wanted))

    def first_refusal(self, blocked: Blocked) -> bool:
        """True once per window and counter: the refusal that goes to the custody log."""
        try:
            return bool(
                self.r.set(
                    f"{_PREFIX}logged:{blocked.kind}:{blocked.key}", b"1", nx=True, ex=blocked.retry_after
                )
            )
        except redis.RedisError:
            return True

    def clear(self, addr: str | None = None, account: str | None = None) -> None:
        """Forget the counters (an administrator enabling an account starts it afresh)."""
        keys = ([self._count_key("addr", addr)] if addr else []) + (
            [self._count_key("account", account), f"{_PREFIX}logged:account:{account}"] if account else []
        )
        if keys:
            try:
                self.r.delete(*keys)
            except redis.RedisError as exc:
                log.warning("authentication throttle unavailable (%s): not cleared", type(exc).__name__)
