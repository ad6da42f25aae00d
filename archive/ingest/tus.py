"""The tus 1.0 protocol: metadata encoding (shared by the API and the dock client), the version,
extensions and checksum headers.

Imports nothing heavy: `custody dock` loads this module, and a dock station should start fast.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from archive.errors import InvalidInput, TooLarge
from archive.i18n import _
from archive.ingest.errors import PreconditionFailed

DEFERRED = "deferred"  # sha256 metadata value: the final PATCH carries Custody-Sha256 instead
_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def parse_metadata(header: str | None, max_bytes: int) -> dict[str, str]:
    """Parse a tus ``Upload-Metadata`` header: ``key base64value`` pairs separated by commas."""
    if not header:
        return {}
    if len(header) > max_bytes:
        raise TooLarge(
            _("Upload-Metadata is {count} bytes; at most {max_bytes} are accepted").format(
                count=len(header), max_bytes=max_bytes
            )
        )
    out: dict[str, str] = {}
    for pair in header.split(","):
        bits = pair.strip().split(" ")
        if not bits or not _KEY.match(bits[0]) or len(bits) > 2:
            raise InvalidInput(_("malformed Upload-Metadata pair {pair!r}").format(pair=pair.strip()[:40]))
        key = bits[0]
        if key in out:
            raise InvalidInput(_("Upload-Metadata names {key!r} twice").format(key=key))
        try:
            out[key] = base64.b64decode(bits[1], validate=True).decode("utf-8") if len(bits) == 2 else ""
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidInput(
                _("Upload-Metadata value of {key!r} is not base64 of UTF-8 text").format(key=key)
            ) from exc
    return out


def encode_metadata(meta: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in meta.items())


# --------------------------------------------------------------------------- protocol headers

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,termination,checksum"
CHECKSUM_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}


def check_version(value: str | None) -> None:
    if value != TUS_VERSION:
        raise PreconditionFailed(_("Tus-Resumable must be {tus_version}").format(tus_version=TUS_VERSION))


def int_header(name: str, value: str | None) -> int:
    if value is None or not (value.isascii() and value.isdigit()):  # "²" is a digit to str
        raise InvalidInput(_("{name} must be a non-negative integer").format(name=name))
    return int(value)


@dataclass
class Checksum:
    """An ``Upload-Checksum`` header: the algorithm, the digest it names, and a running hash."""

    algorithm: str
    expected: bytes
    hasher: Any


def parse_checksum(header: str | None) -> Checksum | None:
    if not header:
        return None
    algo, _sep, b64 = header.partition(" ")
    factory = CHECKSUM_ALGORITHMS.get(algo.lower())
    if factory is None:
        raise InvalidInput(_("Upload-Checksum algorithm {algo!r} is not supported").format(algo=algo))
    try:
        expected = base64.b64decode(b64, validate=True)
    except binascii.Error as exc:
        raise InvalidInput(_("Upload-Checksum value is not base64")) from exc
    return Checksum(algo, expected, factory())
