"""The process's collaborators, built once: settings, database engine, object store, signing keys,
the task dispatcher and the clock.

Every entry point builds one :class:`Context` after it forks and before it serves: the API in its
lifespan, a Celery worker process in ``worker_process_init``, the CLI per command. Nothing is built
at import time, and no client is shared across processes (mediacms#1524).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.engine import Engine

from archive.clock import Clock, utcnow
from archive.config import Settings, get_settings
from archive.db import make_engine
from archive.signing import Keyring
from archive.storage import MinioStore, ObjectStore


class Dispatcher(Protocol):
    """Sends work to the workers. Call it only after the transaction that made the work's rows has
    committed (``archive.db.after_commit``): a worker must find what it is told about."""

    def send(self, step: str, media_id: str, sha256: str) -> None:
        """One ingest pipeline step (``archive.ingest.pipeline.Step``) for one media item."""

    def send_task(self, name: str, *args: str) -> None:
        """Any other task, by its registered name."""


class NoDispatcher:
    """For processes that send no tasks (the CLI's read-only commands): sending is a bug there."""

    def send(self, step: str, media_id: str, sha256: str) -> None:
        raise RuntimeError(f"this process cannot send tasks (asked for {step} of {media_id})")

    def send_task(self, name: str, *args: str) -> None:
        raise RuntimeError(f"this process cannot send tasks (asked for {name})")


@dataclass
class Context:
    engine: Engine
    store: ObjectStore
    keyring: Keyring
    settings: Settings
    dispatcher: Dispatcher = field(default_factory=NoDispatcher)
    clock: Clock = utcnow

    @classmethod
    def build(cls, settings: Settings | None = None, dispatcher: Dispatcher | None = None) -> Context:
        s = settings if settings is not None else get_settings()
        return cls(
            engine=make_engine(s.resolved_database_url()),
            store=MinioStore(s),
            keyring=Keyring.from_settings(s),  # key files, or a PKCS#11 token
            settings=s,
            dispatcher=dispatcher if dispatcher is not None else NoDispatcher(),
        )

    def close(self) -> None:
        self.engine.dispose()
