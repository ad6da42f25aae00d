"""What the archive keeps of a probe (:class:`ProbeFacts`, stored as JSON on the media row) and a
derived file made from a source (:class:`DerivedFile`)."""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any


class MediaKind(StrEnum):
    VIDEO = "video"
    AUDIO = "audio"
    IMAGE = "image"


@dataclass(frozen=True)
class ProbeFacts:
    """What ffprobe says about a source, normalised. Facts, not judgements: values come from the file."""

    kind: MediaKind
    container: str
    duration_s: float | None
    width: int | None
    height: int | None
    video_codec: str | None
    audio_codec: str | None
    # Degrees clockwise the picture must turn to display upright, as the display matrix (or EXIF
    # Orientation) says: 0/90/180/270. ffprobe's own side-data "rotation" counts counter-clockwise
    # (a phone held upright shows -90 there, 90 in exiftool), hence the sign flip in _rotation().
    rotation: int
    creation_time: datetime | None  # tz-aware UTC
    gps: tuple[float, float] | None  # (latitude, longitude), decimal degrees
    frame_rate: float | None
    bit_rate: int | None
    make: str | None
    model: str | None
    # Not in the original API sketch, but the remux decision needs it: 10-bit or 4:2:2 H.264 is "h264"
    # too, and browsers will not play it.
    pixel_format: str | None = None
    # MP4/MOV: the index (moov) comes before the media data (mdat), so a browser can start playing
    # after the first range request. None: not an ISO BMFF file, or not known (probed before issue 15).
    index_at_front: bool | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "container": self.container,
            "duration_s": self.duration_s,
            "width": self.width,
            "height": self.height,
            "video_codec": self.video_codec,
            "audio_codec": self.audio_codec,
            "pixel_format": self.pixel_format,
            "rotation": self.rotation,
            "creation_time": _iso_utc(self.creation_time) if self.creation_time else None,
            "gps": list(self.gps) if self.gps else None,
            "frame_rate": self.frame_rate,
            "bit_rate": self.bit_rate,
            "make": self.make,
            "model": self.model,
            "index_at_front": self.index_at_front,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ProbeFacts":
        """Inverse of :meth:`to_json`, so a task can act on facts stored by an earlier task."""
        created = data.get("creation_time")
        gps = data.get("gps")
        return cls(
            kind=MediaKind(data["kind"]),
            container=str(data["container"]),
            duration_s=_opt_float(data.get("duration_s")),
            width=_opt_int(data.get("width")),
            height=_opt_int(data.get("height")),
            video_codec=_opt_str(data.get("video_codec")),
            audio_codec=_opt_str(data.get("audio_codec")),
            pixel_format=_opt_str(data.get("pixel_format")),
            rotation=int(data.get("rotation") or 0),
            creation_time=datetime.fromisoformat(created).astimezone(UTC) if created else None,
            gps=(float(gps[0]), float(gps[1])) if gps else None,
            frame_rate=_opt_float(data.get("frame_rate")),
            bit_rate=_opt_int(data.get("bit_rate")),
            make=_opt_str(data.get("make")),
            model=_opt_str(data.get("model")),
            index_at_front=_opt_bool(data.get("index_at_front")),
        )


@dataclass(frozen=True)
class DerivedFile:
    # None for method "original": the original's own bytes serve as the proxy, no file is written.
    path: Path | None
    content_type: str
    method: str  # "original" | "remux" | "copy-video" | "transcode" | "image"


def _opt_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _iso_utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _opt_int(value: object) -> int | None:
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None


def _opt_float(value: object) -> float | None:
    try:
        result = float(str(value)) if value is not None else None
    except ValueError:
        return None
    return result if result is not None and math.isfinite(result) else None


def _opt_str(value: object) -> str | None:
    return str(value) if value is not None else None
