"""ffprobe over a source: its kind, container, streams, duration, rotation, recording time and place."""

import contextlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from archive.errors import MediaToolFailed, UndecodableMedia
from archive.i18n import _
from archive.media.ffmpeg.exif import (
    _clean,
    _creation_time,
    _exif_rotation,
    _exif_tags,
    _first_text,
    _gps,
    _merged_tags,
)
from archive.media.ffmpeg.facts import MediaKind, ProbeFacts, _opt_float, _opt_int, _opt_str
from archive.media.ffmpeg.run import (
    _IMAGE_CODECS,
    _PROBE_ENTRIES,
    _ffprobe_json,
    _is_url,
    _redactor,
    index_at_front,
)

# --------------------------------------------------------------------------------------------------
# probe


def probe(source: str, *, timeout_s: float = 60) -> ProbeFacts:
    """Read the facts of a source. Raises UndecodableMedia when the source is not media ffmpeg reads.

    ffmpeg-python's ``ffmpeg.probe`` would do, but it has no timeout: a presigned URL whose server stops
    answering would hang the worker, so ffprobe runs under the same watchdog as ffmpeg.
    """
    redact = _redactor(source)
    if not _is_url(source):
        path = Path(source)
        if not path.is_file():
            raise MediaToolFailed(f"probe: {source} is not a readable file")
        if path.stat().st_size == 0:
            raise UndecodableMedia(_("the file is empty (0 bytes)"))

    doc = _ffprobe_json(source, ["-show_entries", _PROBE_ENTRIES], timeout_s=timeout_s, redact=redact)
    streams = [s for s in doc.get("streams", []) if isinstance(s, dict)]
    fmt = doc.get("format", {})
    if not isinstance(fmt, dict):
        fmt = {}
    video = next((s for s in streams if s.get("codec_type") == "video" and not _is_attached_pic(s)), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if video is None and audio is None:
        kinds = sorted({str(s.get("codec_type")) for s in streams})
        found = f" (only {', '.join(kinds)} streams)" if kinds else ""
        raise UndecodableMedia(_("no audio, video or image stream in the file{found}").format(found=found))
    if video is not None and (not video.get("codec_name") or not _opt_int(video.get("width"))):
        tag = video.get("codec_tag_string") or "unknown"
        raise UndecodableMedia(
            _("the video stream uses a codec ffmpeg cannot decode (codec tag {tag!r})").format(tag=tag)
        )
    if video is None and audio is not None and not audio.get("codec_name"):
        tag = audio.get("codec_tag_string") or "unknown"
        raise UndecodableMedia(
            _("the audio stream uses a codec ffmpeg cannot decode (codec tag {tag!r})").format(tag=tag)
        )

    format_name = str(fmt.get("format_name") or "")
    kind = _kind(format_name, video, audio)
    exif: dict[str, str] = {}
    if kind is MediaKind.IMAGE:
        # EXIF lives in the JPEG's APP1 segment, which ffmpeg reads only while decoding the picture.
        exif = _exif_tags(source, timeout_s=timeout_s, redact=redact)
    tags = _merged_tags(fmt, video, audio)

    width = _opt_int(video.get("width")) if video else None
    height = _opt_int(video.get("height")) if video else None
    duration = None if kind is MediaKind.IMAGE else _duration(fmt, video, audio)
    container = _container(format_name, tags, video)
    at_front = index_at_front(source, timeout_s=timeout_s) if format_name.startswith("mov,") else None
    return ProbeFacts(
        kind=kind,
        container=container,
        duration_s=duration,
        width=width,
        height=height,
        video_codec=str(video["codec_name"]) if video else None,
        audio_codec=_opt_str(audio.get("codec_name")) if audio else None,
        pixel_format=_opt_str(video.get("pix_fmt")) if video else None,
        rotation=_exif_rotation(exif) if kind is MediaKind.IMAGE else _rotation(video),
        creation_time=_creation_time(tags, exif),
        gps=_gps(tags, exif),
        frame_rate=None if kind is not MediaKind.VIDEO or video is None else _frame_rate(video),
        bit_rate=None if kind is MediaKind.IMAGE else _opt_int(fmt.get("bit_rate")),
        make=_first_text(tags, ("com.apple.quicktime.make", "make", "com.android.manufacturer"))
        or _clean(exif.get("Make")),
        model=_first_text(tags, ("com.apple.quicktime.model", "model", "com.android.model"))
        or _clean(exif.get("Model")),
        index_at_front=at_front,
    )


def _is_attached_pic(stream: Mapping[str, Any]) -> bool:
    disposition = stream.get("disposition") or {}
    return bool(disposition.get("attached_pic")) or bool(disposition.get("timed_thumbnails"))


def _kind(format_name: str, video: Mapping[str, Any] | None, audio: Mapping[str, Any] | None) -> MediaKind:
    if video is None:
        return MediaKind.AUDIO
    if audio is None:
        names = format_name.split(",")
        if "image2" in names or any(n.endswith("_pipe") for n in names):
            return MediaKind.IMAGE
        frames = _opt_int(video.get("nb_frames"))
        if video.get("codec_name") in _IMAGE_CODECS and frames in (None, 1) and format_name != "gif":
            return MediaKind.IMAGE
    return MediaKind.VIDEO


def _container(format_name: str, tags: Mapping[str, str], video: Mapping[str, Any] | None) -> str:
    first = format_name.split(",")[0] if format_name else "unknown"
    if first == "mov":
        brand = tags.get("major_brand", "").strip().lower()
        if brand == "qt":
            return "mov"
        if brand.startswith("m4a"):
            return "m4a"
        if brand.startswith("3g"):
            return "3gp"
        return "mp4"
    if first == "image2" or first.endswith("_pipe"):
        codec = str((video or {}).get("codec_name") or first)
        return {"mjpeg": "jpeg", "jpeg2000": "jpeg2000"}.get(codec, codec)
    return first


def _duration(
    fmt: Mapping[str, Any], video: Mapping[str, Any] | None, audio: Mapping[str, Any] | None
) -> float | None:
    for candidate in (fmt.get("duration"), (video or {}).get("duration"), (audio or {}).get("duration")):
        value = _opt_float(candidate)
        if value is not None and value > 0 and math.isfinite(value):
            return round(value, 3)
    return None


def _frame_rate(video: Mapping[str, Any]) -> float | None:
    for key in ("avg_frame_rate", "r_frame_rate"):
        num, _, den = str(video.get(key) or "").partition("/")
        try:
            rate = float(num) / float(den or 1)
        except (ValueError, ZeroDivisionError):
            continue
        if rate > 0 and math.isfinite(rate):
            return round(rate, 3)
    return None


def _rotation(video: Mapping[str, Any] | None) -> int:
    if video is None:
        return 0
    for side in video.get("side_data_list") or []:
        if isinstance(side, dict) and "rotation" in side:
            # ffprobe prints av_display_rotation_get(): counter-clockwise degrees.
            return _quarter_turns(-float(side["rotation"]))
    legacy = (video.get("tags") or {}).get("rotate")  # ffmpeg < 5 exported a clockwise "rotate" tag
    if legacy is not None:
        with contextlib.suppress(ValueError):
            return _quarter_turns(float(legacy))
    return 0


def _quarter_turns(degrees: float) -> int:
    return (round(degrees / 90) * 90) % 360


# EXIF Orientation -> clockwise turn. The mirrored values (2, 4, 5, 7) map to the turn that leaves the
# picture upright but mirrored; ProbeFacts has no mirror flag and those orientations are rare.
