"""One beat in the whole installation, whatever is started: a leader lease in Redis.

Celery beat sends the schedule (checkpoints, fixity, retention, oversight, publicity); two beats would
send each scheduled task twice. Every beat takes the lease ``custody:beat-leader`` (a Redis lock with a
time-to-live, renewed while it runs) before its scheduler starts; a second beat waits as a standby,
saying so, and takes over within the lease time once the leader stops or dies. A leader that cannot
renew (Redis unreachable long enough for the lease to run out, or the lease taken over) stops itself:
another beat may already be leading. Connected by ``workers.celery_app`` (the ``beat_init`` signal).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from typing import Any

import redis
from celery.signals import beat_init
from redis.exceptions import LockError, RedisError

from archive.config import get_settings

LEASE_KEY = "custody:beat-leader"
log = logging.getLogger("custody.beat")


def take_lead(client: redis.Redis, *, lease_s: float, poll_s: float) -> Any:
    """Block until this process holds the lease; returns the held lock."""
    me = f"{socket.gethostname()}:{os.getpid()}"
    lock = client.lock(LEASE_KEY, timeout=lease_s, blocking=False, thread_local=False)
    said = False
    while True:
        try:
            if lock.acquire(token=me.encode()):
                break
            if not said:
                holder = client.get(LEASE_KEY)
                who = holder.decode() if isinstance(holder, bytes) else "?"
                log.warning("beat: standing by, another beat leads (%s); taking over when it stops", who)
                said = True
        except RedisError as exc:  # Redis not up yet: wait for it, as Celery itself does
            log.warning("beat: cannot reach Redis for the leader lease (%s); retrying", exc)
        time.sleep(poll_s)
    log.warning("beat: leading (%s); the schedule runs here", me)
    return lock


def _keep(lock: Any, lease_s: float) -> None:
    """Renew the lease at a third of its time. Stop this beat when the lease is someone else's (or gone),
    or when Redis has been unreachable for as long as the lease lasts: by then another beat may lead.
    A shorter outage (a Redis restart) is ridden out, as Celery itself rides it out."""
    last_ok = time.monotonic()
    while True:
        time.sleep(lease_s / 3)
        try:
            lock.reacquire()
            last_ok = time.monotonic()
            continue
        except LockError as exc:  # not ours any more (LockNotOwnedError), or gone
            reason = str(exc) or type(exc).__name__
        except RedisError as exc:
            if time.monotonic() - last_ok < lease_s:
                log.warning("beat: cannot renew the leader lease (%s); retrying", exc)
                continue
            reason = f"Redis unreachable for {lease_s:g} s: {exc}"
        log.critical("beat: lost the leader lease (%s); stopping so that only one beat runs", reason)
        os.kill(os.getpid(), signal.SIGTERM)
        return


@beat_init.connect
def _lead(sender: Any = None, **_: Any) -> None:
    # Celery's signal dispatch logs and swallows a receiver's exceptions, which would let this beat run
    # its schedule with no lease: anything unexpected stops the beat instead (SystemExit gets through).
    try:
        _take_and_keep()
    except Exception as exc:
        log.critical("beat: cannot take the leader lease (%s); stopping", exc)
        raise SystemExit(1) from exc


def _take_and_keep() -> None:
    settings = get_settings()
    lease_s = settings.beat_lease_s
    client = redis.Redis.from_url(settings.redis_url)
    lock = take_lead(client, lease_s=lease_s, poll_s=max(0.2, lease_s / 6))
    threading.Thread(target=_keep, args=(lock, lease_s), name="beat-lease", daemon=True).start()

    def release() -> None:  # a clean stop hands over at once instead of after the lease time
        with contextlib.suppress(LockError, RedisError):
            lock.release()

    atexit.register(release)
