"""One PATCH at a time per upload: the lock behind a small protocol, and its Redis implementation.

The lock is short and renewed while its PATCH runs, so after an API crash the upload is writable
again within one TTL. It is not thread-local: acquire, extend and release run on whichever
threadpool thread is free (with a thread-local token, release from another thread fails and the
upload stays locked until the TTL runs out).
"""

from __future__ import annotations

from typing import Protocol

import redis
from redis.exceptions import LockError


class LockLost(Exception):
    """The lock expired (or was taken) before its holder renewed or released it."""


class Held(Protocol):
    def extend(self) -> None:
        """Reset the lock's lifetime to a full TTL; :class:`LockLost` if it is gone."""

    def release(self) -> None:
        """Let go; :class:`LockLost` if it had already expired."""


class UploadLocks(Protocol):
    ttl_s: int

    def acquire(self, upload_id: str) -> Held | None:
        """The upload's lock, or None at once if another request holds it."""

    def held(self, upload_id: str) -> bool:
        """Whether some request is writing to the upload now."""


def lock_key(upload_id: str) -> str:
    return f"custody:upload-lock:{upload_id}"


class _RedisHeld:
    def __init__(self, lock: redis.lock.Lock, ttl_s: int) -> None:
        self._lock = lock
        self._ttl_s = ttl_s

    def extend(self) -> None:
        try:
            self._lock.extend(self._ttl_s, replace_ttl=True)
        except LockError as exc:
            raise LockLost(str(exc)) from exc

    def release(self) -> None:
        try:
            self._lock.release()
        except LockError as exc:
            raise LockLost(str(exc)) from exc


class RedisUploadLocks:
    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.client = client
        self.ttl_s = ttl_s

    def acquire(self, upload_id: str) -> Held | None:
        lock = self.client.lock(lock_key(upload_id), timeout=self.ttl_s, blocking=False, thread_local=False)
        return _RedisHeld(lock, self.ttl_s) if lock.acquire() else None

    def held(self, upload_id: str) -> bool:
        return bool(self.client.exists(lock_key(upload_id)))
