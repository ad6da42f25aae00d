"""Keys for encryption at rest (S3 SSE-C), kept where the S3 server cannot reach them.

Every object is written with SSE-C: the S3 server encrypts it with a key sent in the request and
stores only a salted MD5 of that key, so neither its disks, its operators nor anyone holding its
own credentials can read the bytes back. The keys live with the application:

- production: ``CUSTODY_STORAGE_KEYS``, comma-separated base64 32-byte master keys from the
  agency's secret store, the first one current;
- otherwise: key files ``<key_dir>/storage/<id>.key`` (32 random bytes, 0600, folder 0700) made on
  first use, the one named in ``<key_dir>/storage/current`` in force.

Each object gets its own key, derived from a master key and the object's bucket and name
(HMAC-SHA256), so one object's key - which travels with every request for it - opens nothing else.
The master key's id is recorded in the object's metadata (``x-amz-meta-custody-key-id``), readable
only with the key itself; readers find the key by trying the current key first, then the older ones.

Rotation (:func:`rotate`) makes a new current master key: new objects are written with it, old
objects stay readable with their old key, which must therefore be kept as long as an object made
under it is retained. (Re-encrypting in place is not offered: the originals are under Object Lock,
so the old version would remain anyway, and Ceph RGW does not implement copy with SSE-C.)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from minio.sse import SseCustomerKey

from archive.config import Settings

KEY_BYTES = 32
_CURRENT = "current"
_DERIVE_LABEL = b"custody-sse-c-v1"


class StorageKeyError(RuntimeError):
    """The storage keys are missing, malformed or do not open an object."""


def key_id_for(master: bytes) -> str:
    """A name for a master key that reveals nothing about it (a domain-separated hash)."""
    return hashlib.sha256(b"custody-storage-key-id\0" + master).hexdigest()[:16]


@dataclass(frozen=True)
class StorageKeys:
    """The master keys, by id; ``current`` encrypts new objects."""

    keys: dict[str, bytes]
    current: str
    folder: Path | None = None  # key files: reloaded when another process rotates (see stale)
    stamp: int = 0  # mtime (ns) of the folder's `current` pointer when read

    def stale(self) -> bool:
        """Another process rotated the key files since these were read."""
        if self.folder is None:
            return False
        try:
            return (self.folder / _CURRENT).stat().st_mtime_ns != self.stamp
        except FileNotFoundError:
            return True

    def ids_to_try(self) -> list[str]:
        """The current key first (most objects), then the others."""
        return [self.current, *(k for k in self.keys if k != self.current)]

    def sse(self, key_id: str, bucket: str, name: str) -> SseCustomerKey:
        """The SSE-C key of one object under master key ``key_id``."""
        master = self.keys[key_id]
        derived = hmac.new(
            master, _DERIVE_LABEL + b"\0" + bucket.encode() + b"\0" + name.encode(), hashlib.sha256
        ).digest()
        return SseCustomerKey(derived)

    @classmethod
    def from_settings(cls, settings: Settings) -> StorageKeys | None:
        """None when encryption at rest is off (refused outside the embedded loopback profile)."""
        if not settings.storage_encryption:
            return None
        configured = settings.storage_keys.get_secret_value().strip()
        if configured:
            return cls.parse(configured)
        return cls.from_folder(key_folder(settings))

    @classmethod
    def parse(cls, text: str) -> StorageKeys:
        keys: dict[str, bytes] = {}
        for item in (p.strip() for p in text.split(",")):
            if not item:
                continue
            try:
                raw = base64.b64decode(item, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise StorageKeyError("CUSTODY_STORAGE_KEYS: an entry is not base64") from exc
            if len(raw) != KEY_BYTES:
                raise StorageKeyError(f"CUSTODY_STORAGE_KEYS: each key must be {KEY_BYTES} bytes")
            keys[key_id_for(raw)] = raw
        if not keys:
            raise StorageKeyError("CUSTODY_STORAGE_KEYS holds no key")
        return cls(keys, next(iter(keys)))

    @classmethod
    def from_folder(cls, folder: Path) -> StorageKeys:
        pointer = folder / _CURRENT
        if not pointer.exists():
            _new_key_file(folder, first=True)
        stamp = pointer.stat().st_mtime_ns
        current = pointer.read_text().strip()
        keys = {p.stem: _read_key(p) for p in sorted(folder.glob("*.key"))}
        if current not in keys:
            raise StorageKeyError(f"{pointer} names key {current}, which is not in {folder}")
        return cls(keys, current, folder, stamp)


def key_folder(settings: Settings) -> Path:
    return settings.resolved_key_dir() / "storage"


def rotate(settings: Settings) -> tuple[str, str]:
    """Make a new current master key file; returns (previous id, new id). Old keys stay."""
    if settings.storage_keys.get_secret_value().strip():
        raise StorageKeyError(
            "the storage keys come from CUSTODY_STORAGE_KEYS: rotate them in the secret store "
            "(put a new key first, keep the old ones after it)"
        )
    folder = key_folder(settings)
    previous = StorageKeys.from_folder(folder).current
    return previous, _new_key_file(folder)


def _read_key(path: Path) -> bytes:
    raw = path.read_bytes()
    if len(raw) != KEY_BYTES or key_id_for(raw) != path.stem:
        raise StorageKeyError(f"storage key file {path} is damaged (length or id does not match)")
    return raw


def _new_key_file(folder: Path, *, first: bool = False) -> str:
    """Write a new master key file and point `current` at it. ``first``: only if no process has
    made one meanwhile (the API and workers starting together must agree on one key)."""
    folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.mkdir(mode=0o700, exist_ok=True)
    folder.chmod(0o700)
    raw = secrets.token_bytes(KEY_BYTES)
    key_id = key_id_for(raw)
    # O_EXCL + 0600: never readable by anyone else, not even for an instant
    fd = os.open(folder / f"{key_id}.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())
    tmp = folder / f".{_CURRENT}.{key_id}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key_id + "\n")
    if first:
        try:
            os.link(tmp, folder / _CURRENT)  # fails if another process got there first
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    else:
        tmp.replace(folder / _CURRENT)
    return key_id
