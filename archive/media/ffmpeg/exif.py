"""Metadata a probe reads besides the streams: EXIF and container tags for rotation, the time a
recording began (with its zone), and GPS position (ISO 6709 or EXIF degrees)."""

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from archive.media.ffmpeg.run import _EXIF_KEYS, _ffprobe_json

_EXIF_ORIENTATION_CW = {1: 0, 2: 0, 3: 180, 4: 180, 5: 90, 6: 90, 7: 270, 8: 270}


def _exif_rotation(exif: Mapping[str, str]) -> int:
    try:
        return _EXIF_ORIENTATION_CW.get(int(exif.get("Orientation", "1").strip()), 0)
    except ValueError:
        return 0


def _exif_tags(source: str, *, timeout_s: float, redact: Callable[[str], str]) -> dict[str, str]:
    doc = _ffprobe_json(
        source,
        [
            "-select_streams",
            "v:0",
            "-read_intervals",
            "%+#1",
            "-show_entries",
            "frame_tags=" + ",".join(_EXIF_KEYS),
        ],
        timeout_s=timeout_s,
        redact=redact,
    )
    frames = doc.get("frames") or [{}]
    tags = (frames[0].get("tags") or {}) if isinstance(frames[0], dict) else {}
    return {str(k): str(v) for k, v in tags.items()}


def _merged_tags(
    fmt: Mapping[str, Any], video: Mapping[str, Any] | None, audio: Mapping[str, Any] | None
) -> dict[str, str]:
    """Container tags win over stream tags; keys lower-cased (QuickTime and Matroska disagree on case)."""
    merged: dict[str, str] = {}
    for source in (audio, video, fmt):
        for key, value in ((source or {}).get("tags") or {}).items():
            merged[str(key).lower()] = str(value)
    return merged


def _first_text(tags: Mapping[str, str], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = _clean(tags.get(key))
        if value:
            return value
    return None


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.replace("\x00", "").strip()
    return value or None


# -- time


_HAS_CLOCK_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
# Clocks that were never set: MP4's zero (1904) and Unix's zero (1970) show up in real recordings.
_UNSET_BEFORE = datetime(1970, 1, 2, tzinfo=UTC)


def _creation_time(tags: Mapping[str, str], exif: Mapping[str, str]) -> datetime | None:
    # QuickTime's creationdate carries the device's UTC offset; creation_time is UTC by the MP4 spec.
    for key in ("com.apple.quicktime.creationdate", "creation_time", "date"):
        value = _parse_container_time(tags.get(key))
        if value is not None:
            return value
    for time_key, offset_key in (
        ("DateTimeOriginal", "0x9011"),  # OffsetTimeOriginal: ffmpeg has no name for the 0x901x tags
        ("DateTimeDigitized", "0x9012"),
        ("DateTime", "0x9010"),
    ):
        value = _parse_exif_time(exif.get(time_key), exif.get(offset_key))
        if value is not None:
            return value
    return None


def _parse_container_time(value: str | None) -> datetime | None:
    value = _clean(value)
    # A date alone ("2024-06-10" in WAV/AVI/MP3 tags) is not a moment: midnight UTC would be invented.
    if not value or not _HAS_CLOCK_TIME.match(value):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return _plausible(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def _parse_exif_time(value: str | None, offset: str | None) -> datetime | None:
    value = _clean(value)
    if not value:
        return None
    try:
        parsed = datetime.strptime(value[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None  # "0000:00:00 00:00:00" and other placeholders
    # EXIF stores the camera's local time. With OffsetTime* we know the zone; without it we assume UTC,
    # which is wrong by the camera's offset (callers showing this should say "camera clock").
    zone = _parse_offset(offset) or UTC
    return _plausible(parsed.replace(tzinfo=zone))


def _parse_offset(offset: str | None) -> timezone | None:
    m = re.fullmatch(r"\s*([+-])(\d{2}):?(\d{2})\s*", offset or "")
    if not m:
        return None
    minutes = int(m[2]) * 60 + int(m[3])
    return timezone(timedelta(minutes=-minutes if m[1] == "-" else minutes))


def _plausible(value: datetime) -> datetime | None:
    value = value.astimezone(UTC)
    return value if value >= _UNSET_BEFORE else None


# -- location


_ISO6709 = re.compile(r"^\s*([+-])(\d+(?:\.\d*)?)([+-])(\d+(?:\.\d*)?)")


def _gps(tags: Mapping[str, str], exif: Mapping[str, str]) -> tuple[float, float] | None:
    keys = ["com.apple.quicktime.location.iso6709", "location", "location-eng"]
    keys += sorted(k for k in tags if k.startswith("location") and k not in keys)
    for key in keys:
        point = _parse_iso6709(tags.get(key))
        if point is not None:
            return point
    lat = _exif_coordinate(exif.get("GPSLatitude"), exif.get("GPSLatitudeRef"), "S")
    lon = _exif_coordinate(exif.get("GPSLongitude"), exif.get("GPSLongitudeRef"), "W")
    if lat is None or lon is None:
        return None
    return _valid_point(lat, lon)


def _parse_iso6709(value: str | None) -> tuple[float, float] | None:
    """ISO 6709 as QuickTime writes it: "+52.5200+013.4050+034.000/" (also the DDMM and DDMMSS forms)."""
    m = _ISO6709.match(value or "")
    if not m:
        return None
    lat = _iso6709_degrees(m[2], 2)
    lon = _iso6709_degrees(m[4], 3)
    if lat is None or lon is None:
        return None
    return _valid_point(-lat if m[1] == "-" else lat, -lon if m[3] == "-" else lon)


def _iso6709_degrees(text: str, degree_digits: int) -> float | None:
    whole, _, fraction = text.partition(".")
    frac = float("0." + fraction) if fraction else 0.0
    if len(whole) == degree_digits:
        return int(whole) + frac
    if len(whole) == degree_digits + 2:
        return int(whole[:degree_digits]) + (int(whole[degree_digits:]) + frac) / 60
    if len(whole) == degree_digits + 4:
        minutes, seconds = int(whole[degree_digits : degree_digits + 2]), int(whole[degree_digits + 2 :])
        return int(whole[:degree_digits]) + minutes / 60 + (seconds + frac) / 3600
    return None


def _exif_coordinate(value: str | None, ref: str | None, negative_ref: str) -> float | None:
    """EXIF GPS as ffmpeg prints it: "52:1, 31:1, 12:1" (degrees, minutes, seconds as rationals)."""
    if not value:
        return None
    parts: list[float] = []
    for rational in value.split(","):
        num, _, den = rational.strip().partition(":")
        try:
            parts.append(float(num) / float(den or 1))
        except (ValueError, ZeroDivisionError):
            return None
    if not parts or len(parts) > 3:
        return None
    degrees = sum(p / 60.0**i for i, p in enumerate(parts))
    return -degrees if (ref or "").strip().upper() == negative_ref else degrees


def _valid_point(lat: float, lon: float) -> tuple[float, float] | None:
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return (round(lat, 6), round(lon, 6))
