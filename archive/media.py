"""The ffmpeg/ffprobe layer of the ingest pipeline: probe facts, browser-playable proxies, posters.

A *source* is a local path or an http(s) URL. Workers pass a presigned S3 GET URL, so ffmpeg reads the
original where it lies with HTTP range requests: no original is copied to local disk, and nothing here
opens a source for writing. Media bytes never pass through Python either; we read ffmpeg's progress lines
and a bounded number of its log lines, nothing else.

Every ffmpeg/ffprobe run has a watchdog: a hard timeout, and for ffmpeg a stall detector on its
``-progress`` output. When either fires the process is killed and :class:`MediaToolFailed` (retryable)
is raised. A file ffmpeg cannot read raises :class:`UndecodableMedia` (permanent) with a reason a person
understands; the original is still archived, hashed and signed.
"""

import contextlib
import ctypes
import json
import logging
import math
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import IO, Any, cast
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import ffmpeg

from archive.errors import MediaToolFailed, UndecodableMedia

logger = logging.getLogger(__name__)

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"

# `repeat` keeps ffmpeg from folding identical lines into "Last message repeated N times", which would
# hide how many errors a damaged file produced; `level` prefixes each line with [error] etc. so we can
# classify it. Everything below error level is noise for us.
_LOGLEVEL = "repeat+level+error"
_GLOBAL_ARGS = ("-hide_banner", "-nostdin", "-nostats", "-loglevel", _LOGLEVEL, "-progress", "pipe:1")

# Protocols a source may use. ffmpeg follows references inside media (HLS playlists, concat lists, ...);
# on an untrusted upload that is a local-file read or a request to any host we can reach. Local sources
# may touch only local files, URL sources only HTTP(S).
_FILE_PROTOCOLS = "file"
_HTTP_PROTOCOLS = "http,https,tcp,tls"

# Demuxers that open further files or URLs named inside the upload. ffmpeg has only an allow-list
# (format_whitelist), so we list the containers evidence arrives in; anything else is refused as
# "not a recognised format". Extending this list is safe as long as the new demuxer reads only its input.
_ACCEPTED_DEMUXERS = ",".join(
    (
        # containers
        "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "asf", "flv", "mpegts", "mpeg",
        "mpegvideo", "mxf", "gxf", "dv", "nut", "ogg", "rm", "ivf", "wtv", "dhav", "smjpeg", "yuv4mpegpipe",
        # elementary video streams (DVR exports)
        "h261", "h263", "h264", "hevc", "m4v", "mjpeg", "cavsvideo", "vc1", "avs2", "avs3",
        # audio
        "wav", "w64", "aiff", "caf", "au", "flac", "mp3", "aac", "ac3", "eac3", "dts", "truehd", "amr",
        "amrnb", "amrwb", "wv", "ape", "tta", "gsm", "voc", "dss", "oma", "mpc", "mpc8", "tak", "loas",
        # still images
        "image2", "jpeg_pipe", "png_pipe", "bmp_pipe", "tiff_pipe", "webp_pipe", "gif", "gif_pipe",
        "jpegls_pipe", "j2k_pipe", "jpegxl_pipe", "psd_pipe", "dpx_pipe", "exr_pipe", "pam_pipe", "pbm_pipe",
        "pgm_pipe", "pgmyuv_pipe", "ppm_pipe", "qoi_pipe", "sgi_pipe", "sunrast_pipe", "xwd_pipe", "apng",
    )
)  # fmt: skip

_IMAGE_CODECS = frozenset(
    {"mjpeg", "png", "bmp", "tiff", "webp", "gif", "jpegls", "jpeg2000", "jpegxl", "psd", "dpx", "exr",
     "pam", "pbm", "pgm", "ppm", "qoi", "sgi", "sunrast", "xwd", "apng"}
)  # fmt: skip

# Corruption verdict. Cut or overwritten bytes make the parser/decoder complain about every packet from
# the damage onwards: g_corrupt_mdat_hole.mp4 (30 s) logs 908 errors in a plain remux and ~1,900 in a
# decode. Real files that play fine log a handful at most (a recording that starts mid-GOP, a truncated
# last MP3 frame). Ten separates the two with a wide margin on both sides.
_CORRUPT_MIN_ERRORS = 10
# A transcode of a damaged 6-hour file would otherwise burn hours producing garbage.
_ABORT_AFTER_ERRORS = 500
_KEEP_LINES = 20  # stderr lines kept for messages; ffmpeg can print millions
_MAX_PROBE_OUTPUT = 16 * 1024 * 1024  # ffprobe JSON; a hostile file must not fill worker memory
_POLL_S = 0.2
_CHUNK = 64 * 1024

# What probe() reads, and nothing else: ffprobe prints every tag in full otherwise, and one 20 MB comment
# in an otherwise valid file would blow the output cap below and get the file refused.
_TAG_KEYS = (
    "major_brand", "creation_time", "com.apple.quicktime.creationdate", "date", "location", "location-eng",
    "com.apple.quicktime.location.iso6709", "make", "model", "com.apple.quicktime.make",
    "com.apple.quicktime.model", "com.android.manufacturer", "com.android.model", "rotate",
)  # fmt: skip
_PROBE_ENTRIES = ":".join(
    (
        "format=format_name,duration,bit_rate",
        "format_tags=" + ",".join(_TAG_KEYS),
        "stream=index,codec_type,codec_name,codec_tag_string,width,height,pix_fmt,avg_frame_rate,"
        "r_frame_rate,duration,nb_frames",
        "stream_disposition=attached_pic,timed_thumbnails",
        "stream_tags=" + ",".join(_TAG_KEYS),
        "stream_side_data=rotation",
    )
)
_EXIF_KEYS = (
    "Make", "Model", "Orientation", "DateTimeOriginal", "DateTimeDigitized", "DateTime",
    "0x9010", "0x9011", "0x9012",  # OffsetTime, OffsetTimeOriginal, OffsetTimeDigitized (unnamed in ffmpeg)
    "GPSLatitude", "GPSLatitudeRef", "GPSLongitude", "GPSLongitudeRef",
)  # fmt: skip

_H264_REMUXABLE_PIX_FMTS = frozenset({"yuv420p", "yuvj420p"})  # 8-bit 4:2:0: what every browser decodes
_PREVIEW_MAX_PX = 1920


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
        )


@dataclass(frozen=True)
class DerivedFile:
    path: Path
    content_type: str
    method: str  # "remux" | "transcode" | "image"


# --------------------------------------------------------------------------------------------------
# Sources


def _is_url(source: str) -> bool:
    return urlsplit(source).scheme.lower() in ("http", "https")


def _input_url(source: str) -> str:
    if _is_url(source):
        return source
    # "file:" stops ffmpeg from reading a path with a colon as another protocol ("concat:", "subfile:").
    return "file:" + str(Path(source).absolute())


def _output_url(path: Path) -> str:
    return "file:" + str(path.absolute())


def _input_options(source: str) -> dict[str, object]:
    opts: dict[str, object] = {"format_whitelist": _ACCEPTED_DEMUXERS}
    if not _is_url(source):
        # Only options the file protocol knows: ffmpeg refuses an input option nothing consumed
        # ("Option reconnect not found"), so the HTTP ones below must not be given to a file.
        opts["protocol_whitelist"] = _FILE_PROTOCOLS
        return opts
    opts.update(
        protocol_whitelist=_HTTP_PROTOCOLS,
        # Presigned S3 GETs honour Range; say so rather than rely on the server advertising
        # Accept-Ranges, or ffmpeg reads a moov-at-end file from the start to find its index.
        seekable=1,
        # A dropped connection mid-file resumes at the same offset instead of failing the run.
        reconnect=1,
        reconnect_on_network_error=1,
        reconnect_on_http_error="5xx",  # S3 503 SlowDown; a 403 (expired URL) is final for this URL
        reconnect_delay_max=10,
        # A silent socket errors out (and reconnects) instead of blocking forever; the stall
        # detector is the backstop for a server that keeps answering without sending data.
        rw_timeout=30_000_000,  # microseconds
    )
    return opts


def _redactor(source: str) -> Callable[[str], str]:
    """Keep presigned-URL signatures out of exceptions and logs: ffmpeg echoes the URL in its errors."""
    if not _is_url(source):
        return lambda text: text
    query = urlsplit(source).query
    if not query:
        return lambda text: text
    return lambda text: text.replace(query, "<query redacted>")


# --------------------------------------------------------------------------------------------------
# Running ffmpeg / ffprobe under a watchdog


@dataclass
class _Outcome:
    returncode: int
    stdout: bytes = b""
    media_errors: list[str] = field(default_factory=list)  # first _KEEP_LINES, redacted
    media_error_count: int = 0
    truncated: bool = False  # the index points past the end of the file ("partial file")
    transport_errors: list[str] = field(default_factory=list)
    other_errors: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)
    first_error_at_s: float | None = None  # output position when the first media error arrived
    out_time_s: float | None = None
    aborted_for_errors: bool = False

    def summary(self) -> str:
        lines = self.transport_errors or self.other_errors or self.media_errors or self.tail
        return "; ".join(lines[:3]) or f"exit status {self.returncode}"


# "[h264 @ 0x5581...] [error] message" or "[error] message"
_LOG_LINE = re.compile(r"^(?:\[(?P<ctx>[^\]]*?) @ 0x[0-9a-f]+\] )?\[(?P<level>[a-z]+)\] (?P<msg>.*)$")
_TRANSPORT_CTX = frozenset({"http", "https", "tcp", "tls", "file", "AVIOContext"})
_TRANSPORT_MSG = re.compile(
    r"Server returned|Connection (refused|reset|timed out)|timed out|I/O error|Input/output error|"
    r"No such file or directory|Permission denied|Network is unreachable|No route to host|"
    r"Name or service not known|Temporary failure in name resolution|No space left on device|"
    r"Broken pipe",
    re.IGNORECASE,
)
# Output side (muxer, encoder, ffmpeg's own wrap-up) is never evidence of a damaged source.
_OUTPUT_CTX = frozenset({"mp4", "ipod", "image2", "null", "libx264"})
_WRAP_UP = re.compile(r"^(Conversion failed!|Error opening output files?|Error writing trailer)")
_FATAL_LEVELS = frozenset({"error", "fatal", "panic"})


class _Watch:
    """State shared between the pipe readers and the watchdog loop."""

    def __init__(self, redact: Callable[[str], str], stall_clock: float) -> None:
        self.lock = threading.Lock()
        self.redact = redact
        self.outcome = _Outcome(returncode=0)
        self.tail: deque[str] = deque(maxlen=_KEEP_LINES)
        self.last_progress = stall_clock
        self.progress_key: tuple[str, str] = ("", "")
        self.out_time_us: str = ""
        self.total_size: str = ""

    def stderr_line(self, raw: str) -> None:
        line = self.redact(raw.rstrip())
        if not line:
            return
        m = _LOG_LINE.match(line)
        ctx, level, msg = (m["ctx"] or "", m["level"], m["msg"]) if m else ("", "error", line)
        with self.lock:
            self.tail.append(line)
            out = self.outcome
            if level not in _FATAL_LEVELS:
                return
            text = _message(ctx, msg)
            if ctx in _TRANSPORT_CTX or _TRANSPORT_MSG.search(msg):
                _keep(out.transport_errors, text)
            elif ctx in _OUTPUT_CTX or _WRAP_UP.match(msg):
                _keep(out.other_errors, text)
            else:
                if out.media_error_count == 0:
                    out.first_error_at_s = _us_to_s(self.out_time_us)
                out.media_error_count += 1
                out.truncated = out.truncated or "partial file" in msg
                _keep(out.media_errors, text)

    def progress_line(self, raw: str) -> None:
        key, _, value = raw.strip().partition("=")
        with self.lock:
            if key == "out_time_us":
                self.out_time_us = value
            elif key == "total_size":
                self.total_size = value
            elif key == "progress":
                # One block is complete. Any movement of output time or size is progress; a block that
                # repeats the last one is not (ffmpeg blocked on a read keeps printing the same block
                # when it prints at all).
                snapshot = (self.out_time_us, self.total_size)
                if snapshot != self.progress_key:
                    self.progress_key = snapshot
                    self.last_progress = time.monotonic()


def _message(ctx: str, msg: str) -> str:
    # "[NULL @ ...]" is a parser with no codec context; its name says nothing to a reader.
    return f"{ctx}: {msg}" if ctx and ctx != "NULL" else msg


def _keep(lines: list[str], line: str) -> None:
    if len(lines) < _KEEP_LINES:
        lines.append(line)


def _us_to_s(value: str) -> float | None:
    try:
        us = int(value)
    except ValueError:
        return None
    return us / 1e6 if us >= 0 else None


@cache
def _prctl() -> Callable[[int, int], int] | None:
    if sys.platform != "linux":
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    return cast("Callable[[int, int], int]", libc.prctl)


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec. If the worker dies hard (Celery's hard time limit, the
    # OOM killer) the kernel kills ffmpeg too; otherwise an orphaned 6-hour transcode keeps a core busy
    # while the redelivered task starts another one.
    prctl = _prctl()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _run(
    argv: list[str],
    *,
    what: str,
    redact: Callable[[str], str],
    timeout_s: float,
    stall_s: float | None = None,
    abort_after_errors: int | None = None,
    capture_stdout: bool = False,
) -> _Outcome:
    """Run a tool with a hard timeout and (for ffmpeg, which prints -progress) a stall detector.

    Raises MediaToolFailed when the watchdog fires or the process cannot start. Otherwise returns what
    happened (exit status, classified error lines) for the caller to judge.
    """
    logger.debug("running %s", redact(" ".join(argv)))
    _prctl()  # resolve before fork: the child must not load libraries
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Safe despite threads in the worker: it only calls a prctl resolved before the fork.
            preexec_fn=_die_with_parent,
        )
    except OSError as exc:
        raise MediaToolFailed(f"{what}: cannot start {argv[0]}: {exc}") from exc

    watch = _Watch(redact, started)
    stdout_buf = bytearray()
    overflow = threading.Event()

    # Bounded reads, never "for line in pipe": a hostile file can carry a 100 MB tag that ffprobe prints
    # as one JSON line. Progress and log lines are short; a longer one is split, which is harmless.
    def read_stdout(pipe: IO[bytes]) -> None:
        if capture_stdout:
            while chunk := pipe.read(_CHUNK):
                if len(stdout_buf) + len(chunk) > _MAX_PROBE_OUTPUT:
                    overflow.set()
                    break
                stdout_buf.extend(chunk)
        else:
            while raw := pipe.readline(_CHUNK):
                watch.progress_line(raw.decode("utf-8", "replace"))
        while pipe.read(_CHUNK):  # keep draining so the tool never blocks on a full pipe
            pass

    def read_stderr(pipe: IO[bytes]) -> None:
        while raw := pipe.readline(_CHUNK):
            watch.stderr_line(raw.decode("utf-8", "replace"))

    if proc.stdout is None or proc.stderr is None:  # cannot happen with PIPE; keeps mypy honest
        proc.kill()
        raise MediaToolFailed(f"{what}: {argv[0]} started without pipes")
    readers = [
        threading.Thread(target=read_stdout, args=(proc.stdout,), daemon=True),
        threading.Thread(target=read_stderr, args=(proc.stderr,), daemon=True),
    ]
    for reader in readers:
        reader.start()

    killed_because: str | None = None
    aborted_for_errors = False
    try:
        while True:
            try:
                proc.wait(timeout=_POLL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            with watch.lock:
                last_progress = watch.last_progress
                errors = watch.outcome.media_error_count
                position = _us_to_s(watch.out_time_us)
            if now - started > timeout_s:
                killed_because = f"still running after the {timeout_s:.0f} s time limit"
            elif stall_s is not None and now - last_progress > stall_s:
                at = f" at {position:.1f} s" if position is not None else " before any output"
                killed_because = f"no progress for {stall_s:.0f} s (stuck{at})"
            elif overflow.is_set():
                killed_because = f"printed more than {_MAX_PROBE_OUTPUT} bytes"
            elif abort_after_errors is not None and errors >= abort_after_errors:
                aborted_for_errors = True
            if killed_because or aborted_for_errors:
                proc.kill()
                proc.wait()
                break
    finally:
        if proc.poll() is None:  # an exception (KeyboardInterrupt) escaped the loop
            proc.kill()
            proc.wait()
        for reader in readers:
            reader.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()

    if killed_because is None and overflow.is_set():  # the tool finished before the loop noticed
        killed_because = f"printed more than {_MAX_PROBE_OUTPUT} bytes"
    if killed_because:
        with watch.lock:
            tail = "; ".join(list(watch.tail)[-3:])
        raise MediaToolFailed(f"{what}: {argv[0]} killed, {killed_because}" + (f" ({tail})" if tail else ""))

    with watch.lock:
        outcome = watch.outcome
        outcome.returncode = proc.returncode
        outcome.stdout = bytes(stdout_buf)
        outcome.tail = list(watch.tail)
        outcome.out_time_s = _us_to_s(watch.out_time_us)
        outcome.aborted_for_errors = aborted_for_errors
    logger.debug("%s: exit %s after %.2f s", what, proc.returncode, time.monotonic() - started)
    return outcome


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
            raise UndecodableMedia("the file is empty (0 bytes)")

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
        raise UndecodableMedia(f"no audio, video or image stream in the file{found}")
    if video is not None and (not video.get("codec_name") or not _opt_int(video.get("width"))):
        tag = video.get("codec_tag_string") or "unknown"
        raise UndecodableMedia(f"the video stream uses a codec ffmpeg cannot decode (codec tag {tag!r})")
    if video is None and audio is not None and not audio.get("codec_name"):
        tag = audio.get("codec_tag_string") or "unknown"
        raise UndecodableMedia(f"the audio stream uses a codec ffmpeg cannot decode (codec tag {tag!r})")

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
    return ProbeFacts(
        kind=kind,
        container=_container(format_name, tags, video),
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
    )


def _ffprobe_json(
    source: str, show: list[str], *, timeout_s: float, redact: Callable[[str], str]
) -> dict[str, Any]:
    argv = [
        FFPROBE, "-hide_banner", "-loglevel", _LOGLEVEL, "-of", "json", *show,
        *_flatten(_input_options(source)), "-i", _input_url(source),
    ]  # fmt: skip
    outcome = _run(argv, what="probe", redact=redact, timeout_s=timeout_s, capture_stdout=True)
    if outcome.returncode != 0:
        if outcome.transport_errors or outcome.returncode < 0:
            # ffmpeg's first request asks for "bytes=0-", which an empty object cannot satisfy (416,
            # reported by ffmpeg only as "4XX Client Error"): that one is the file's fault, not the store's.
            if _is_url(source) and _sniff(source, timeout_s=timeout_s)[0] == 0:
                raise UndecodableMedia("the file is empty (0 bytes)")
            raise MediaToolFailed(f"probe: ffprobe could not read the source: {outcome.summary()}")
        raise UndecodableMedia(_unreadable_reason(source, outcome, timeout_s=timeout_s))
    try:
        doc = json.loads(outcome.stdout)
    except ValueError as exc:
        raise MediaToolFailed(f"probe: ffprobe printed invalid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise MediaToolFailed("probe: ffprobe printed unexpected JSON")
    return doc


def _flatten(options: Mapping[str, object]) -> list[str]:
    return [arg for key, value in options.items() for arg in (f"-{key}", str(value))]


_ISO_BMFF_BOXES = frozenset({b"ftyp", b"mdat", b"free", b"skip", b"wide", b"moov", b"pnot", b"uuid"})


def _unreadable_reason(source: str, outcome: _Outcome, *, timeout_s: float) -> str:
    """Say why ffprobe refused a file, in words for a person, judging by the bytes rather than the name.

    ffprobe trusts a file's extension: anything named .mp4 ("Hello", random bytes, an HTML error page)
    fails with "moov atom not found", exactly like a recording cut off before its index was written.
    """
    size, head = _sniff(source, timeout_s=timeout_s)
    text = " ".join(outcome.media_errors + outcome.other_errors)
    if size == 0:
        return "the file is empty (0 bytes)"
    sized = f"{size:,} bytes" if size is not None else "unknown size"
    refused = re.search(r"(\S+): Format not on whitelist", text)
    if refused:
        return (
            f"the file is in a format the archive does not read ({refused[1]}; playlists and other formats "
            f"that point at further files or URLs are refused) ({sized})"
        )
    if len(head) >= 8 and head[4:8] in _ISO_BMFF_BOXES:
        if "moov atom not found" in text:
            return (
                "MP4/MOV file without its index (no 'moov' atom): the recording was cut off before the "
                f"camera finished writing it, or the upload is incomplete ({sized})"
            )
        return f"damaged MP4/MOV file: {outcome.summary()} ({sized})"
    return f"not a recognised audio, video or image format ({sized}, starts with {_show_bytes(head)})"


def _sniff(source: str, *, timeout_s: float) -> tuple[int | None, bytes]:
    """Size and first 16 bytes of a source, to explain a refusal. Never more than 16 bytes in memory."""
    if not _is_url(source):
        try:
            with Path(source).open("rb") as f:
                return Path(source).stat().st_size, f.read(16)
        except OSError:
            return None, b""
    request = Request(source, headers={"Range": "bytes=0-15"})  # noqa: S310 - http(s) only, see _is_url
    try:
        with urlopen(request, timeout=min(timeout_s, 30)) as response:  # noqa: S310 - as above
            head = response.read(16)
            total = (response.headers.get("Content-Range") or "").rpartition("/")[2]
            return _opt_int(total) if total else _opt_int(response.headers.get("Content-Length")), head
    except HTTPError as exc:
        # S3 answers a range request on an empty object with 416 and "Content-Range: bytes */0".
        total = (exc.headers.get("Content-Range") or "").rpartition("/")[2]
        exc.close()
        return (_opt_int(total) if exc.code == 416 else None), b""
    except (URLError, OSError, ValueError):
        return None, b""


def _show_bytes(head: bytes) -> str:
    if not head:
        return "nothing"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return repr(head.decode("ascii"))
    return "bytes " + head.hex(" ")


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


def _iso_utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


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


# --------------------------------------------------------------------------------------------------
# Proxies and posters


@dataclass(frozen=True)
class _Plan:
    method: str
    suffix: str
    content_type: str
    muxer: str


def _plan(facts: ProbeFacts) -> _Plan:
    if facts.kind is MediaKind.IMAGE:
        return _Plan("image", ".jpg", "image/jpeg", "image2")
    if facts.kind is MediaKind.AUDIO:
        method = "remux" if facts.audio_codec == "aac" else "transcode"
        return _Plan(method, ".m4a", "audio/mp4", "ipod")
    browser_ready = (
        facts.video_codec == "h264"
        and facts.pixel_format in _H264_REMUXABLE_PIX_FMTS
        and facts.audio_codec in (None, "aac")
    )
    return _Plan("remux" if browser_ready else "transcode", ".mp4", "video/mp4", "mp4")


def proxy_command(source: str, facts: ProbeFacts, out_path: Path, *, height: int = 720) -> list[str]:
    """The exact ffmpeg argv :func:`make_proxy` runs to write ``out_path`` (built with ffmpeg-python)."""
    plan = _plan(facts)
    image = facts.kind is MediaKind.IMAGE
    # Images: ffmpeg 5.1 ignores EXIF Orientation, so we turn the picture ourselves from the probed
    # rotation; -noautorotate keeps a newer ffmpeg that does read it from turning it a second time.
    inp = ffmpeg.input(
        _input_url(source), **_input_options(source), **({"noautorotate": None} if image else {})
    )
    out_opts: dict[str, object] = {"f": plan.muxer}
    if image:
        picture = _turn(inp["v:0"], facts.rotation).filter(
            "scale",
            w=f"min({_PREVIEW_MAX_PX},iw)",
            h=f"min({_PREVIEW_MAX_PX},ih)",
            force_original_aspect_ratio="decrease",
        )
        streams = [picture]
        out_opts.update({"frames:v": 1, "c:v": "mjpeg", "q:v": 3, "pix_fmt": "yuvj420p", "update": 1})
    elif plan.method == "remux":
        # Bit-for-bit copy: no generation loss, ~400x real time; the display matrix is copied along,
        # and browsers honour it. V:0 skips cover art and thumbnails stored as video streams.
        streams = [inp["V:0" if facts.kind is MediaKind.VIDEO else "a:0"]]
        if facts.kind is MediaKind.VIDEO and facts.audio_codec:
            streams.append(inp["a:0"])
        out_opts.update(c="copy", movflags="+faststart")
    else:
        streams = []
        if facts.kind is MediaKind.VIDEO:
            # ffmpeg's autorotate turns the frames before this chain (and drops the matrix from the
            # output), so the height cap applies to the picture as shown. bwdif touches only frames flagged
            # interlaced (DVR exports); progressive frames pass through. Width follows the display aspect
            # (dar) so anamorphic sources come out with square pixels; both dimensions even for 4:2:0.
            video = (
                inp["V:0"]
                .filter("bwdif", mode="send_frame", deint="interlaced")
                .filter("scale", w="trunc(oh*dar/2+0.5)*2", h=f"max(2,min({height},trunc(ih/2)*2))")
                .filter("setsar", "1")
            )
            streams.append(video)
            out_opts.update({"c:v": "libx264", "preset": "veryfast", "crf": 23, "pix_fmt": "yuv420p"})
        if facts.audio_codec:
            # Mono stays mono; anything wider becomes stereo: 128k is too thin for 5.1 and a review
            # copy needs the words, not the surround mix.
            streams.append(inp["a:0"].filter("aformat", channel_layouts="mono|stereo"))
            out_opts.update({"c:a": "aac", "b:a": "128k"})
        out_opts["movflags"] = "+faststart"
    stream = ffmpeg.output(*streams, _output_url(out_path), **out_opts)
    return _compile(stream)


def _turn(stream: Any, rotation: int) -> Any:
    if rotation == 90:
        return stream.filter("transpose", "clock")
    if rotation == 180:
        return stream.filter("hflip").filter("vflip")
    if rotation == 270:
        return stream.filter("transpose", "cclock")
    return stream


def _compile(stream: Any) -> list[str]:
    argv = stream.global_args(*_GLOBAL_ARGS).overwrite_output().compile(cmd=FFMPEG)
    return [str(arg) for arg in argv]


def make_proxy(
    source: str,
    facts: ProbeFacts,
    out_dir: Path,
    *,
    height: int = 720,
    stall_s: float = 120,
    timeout_s: float = 6 * 3600,
) -> DerivedFile:
    """Write a browser-playable review copy of ``source`` into ``out_dir``.

    H.264 (8-bit 4:2:0) with AAC or no audio is remuxed to faststart MP4; other video is transcoded to
    H.264/AAC at most ``height`` lines; audio becomes AAC in .m4a; an image becomes a JPEG preview.
    Raises UndecodableMedia when ffmpeg reports the source damaged, MediaToolFailed when ffmpeg fails,
    stalls or runs out of time (retryable).
    """
    plan = _plan(facts)
    redact = _redactor(source)
    final = out_dir / f"proxy{plan.suffix}"
    with _scratch(out_dir, "proxy", plan.suffix) as tmp:
        argv = proxy_command(source, facts, tmp, height=height)
        outcome = _run(
            argv, what="proxy", redact=redact, timeout_s=timeout_s, stall_s=stall_s,
            abort_after_errors=_ABORT_AFTER_ERRORS,
        )  # fmt: skip
        _judge(outcome, source, facts, tmp, what="proxy", copied=plan.method == "remux", timeout_s=timeout_s)
        tmp.replace(final)
    return DerivedFile(final, plan.content_type, plan.method)


def make_poster(
    source: str,
    facts: ProbeFacts,
    out_dir: Path,
    *,
    width: int = 640,
    stall_s: float = 120,
    timeout_s: float = 600,
) -> DerivedFile | None:
    """Write a ``width``-wide JPEG poster into ``out_dir``; None for audio-only sources."""
    if facts.kind is MediaKind.AUDIO:
        return None
    redact = _redactor(source)
    final = out_dir / "poster.jpg"
    at = 0.0
    if facts.kind is MediaKind.VIDEO and facts.duration_s:
        at = round(min(1.0, facts.duration_s / 2), 3)
    with _scratch(out_dir, "poster", ".jpg") as tmp:
        # A seek past the last decodable frame writes nothing: try once more from the start.
        for seek in dict.fromkeys((at, 0.0)):
            argv = _poster_command(source, facts, tmp, width=width, at=seek)
            outcome = _run(argv, what="poster", redact=redact, timeout_s=timeout_s, stall_s=stall_s)
            if outcome.returncode == 0 and tmp.is_file() and tmp.stat().st_size > 0:
                break
        if not tmp.is_file() and outcome.media_errors and not outcome.transport_errors:
            raise UndecodableMedia(f"no picture could be decoded for a poster ({outcome.media_errors[0]})")
        # A poster decodes one frame; the proxy run is where damage is judged.
        _judge(outcome, source, facts, tmp, what="poster", copied=False, timeout_s=timeout_s, verdict=False)
        tmp.replace(final)
    return DerivedFile(final, "image/jpeg", "image")


def _poster_command(source: str, facts: ProbeFacts, out_path: Path, *, width: int, at: float) -> list[str]:
    image = facts.kind is MediaKind.IMAGE
    in_opts: dict[str, object] = dict(_input_options(source))
    if image:
        in_opts["noautorotate"] = None
    elif at > 0:
        in_opts["ss"] = at  # an input option, so ffmpeg seeks in the index instead of decoding up to it
    inp = ffmpeg.input(_input_url(source), **in_opts)
    picture = inp["v:0" if image else "V:0"]
    if image:
        picture = _turn(picture, facts.rotation)
    picture = picture.filter("scale", w=width, h=-2).filter("setsar", "1")
    stream = ffmpeg.output(
        picture,
        _output_url(out_path),
        **{"f": "image2", "update": 1, "frames:v": 1, "c:v": "mjpeg", "q:v": 3, "pix_fmt": "yuvj420p"},
    )
    return _compile(stream)


@contextlib.contextmanager
def _scratch(out_dir: Path, stem: str, suffix: str) -> Iterator[Path]:
    """A private name in out_dir, renamed into place by the caller only when the run succeeded."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{stem}-{secrets.token_hex(6)}{suffix}.part"
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _judge(
    outcome: _Outcome,
    source: str,
    facts: ProbeFacts,
    output: Path,
    *,
    what: str,
    copied: bool,
    timeout_s: float,
    verdict: bool = True,
) -> None:
    """Decide whether a finished run produced a good output, a corruption verdict, or a retryable failure.

    Corruption detector: ffmpeg's own error lines, counted while the remux/transcode runs. A plain
    remux already passes every H.264/HEVC packet through ffmpeg's parser, which reports a NAL length
    that overruns its packet ("Invalid NAL unit size") -- exactly what shifted chunk offsets produce --
    and the MP4 demuxer reports samples past the end of the file ("partial file"). A transcode adds the
    decoders' complaints. Measured on g_corrupt_mdat_hole.mp4 (30 s 1080p): 908 error lines during the
    0.12 s remux, ~1,900 during a decode; zero on every good sample. Cost on good files: nothing beyond
    reading an empty stderr. Rejected alternatives: -xerror does not stop on parser errors (it stopped
    only at the truncated last packet, after writing the output) and would turn a single decode glitch
    in a transcode into a failure; comparing packet count with the declared frame count caught the hole
    (810 of 900) only because cutting bytes also truncates the tail, and most containers declare no
    count; decoding the remuxed file costs a full decode (~20x slower than the remux).
    """
    damaged = (
        outcome.truncated or outcome.aborted_for_errors or outcome.media_error_count >= _CORRUPT_MIN_ERRORS
    )
    if damaged and outcome.transport_errors:
        # A dropped connection also looks like missing data; only a clean read may condemn a file.
        raise MediaToolFailed(f"{what}: network errors while reading the source: {outcome.summary()}")
    if damaged and verdict:
        raise UndecodableMedia(_corruption_reason(outcome, source, facts, copied=copied, timeout_s=timeout_s))
    if outcome.returncode != 0:
        if outcome.returncode < 0:
            sig = -outcome.returncode
            raise MediaToolFailed(f"{what}: ffmpeg was killed by signal {sig} (out of memory?)")
        raise MediaToolFailed(f"{what}: ffmpeg failed (exit {outcome.returncode}): {outcome.summary()}")
    if not output.is_file() or output.stat().st_size == 0:
        raise MediaToolFailed(f"{what}: ffmpeg exited 0 but wrote nothing ({outcome.summary()})")
    if outcome.media_error_count:
        logger.warning(
            "%s: %d decode error(s), below the corruption threshold of %d; first: %s",
            what, outcome.media_error_count, _CORRUPT_MIN_ERRORS, outcome.media_errors[0],
        )  # fmt: skip


def _corruption_reason(
    outcome: _Outcome, source: str, facts: ProbeFacts, *, copied: bool, timeout_s: float
) -> str:
    first = outcome.media_errors[0] if outcome.media_errors else "unknown error"
    count = f"{outcome.media_error_count}+" if outcome.aborted_for_errors else str(outcome.media_error_count)
    where = ""
    stream = _stream_of(first, facts)
    if copied:
        # A remux runs at ~400x real time, too fast for its progress lines to place the error; ask
        # a second, cheap stream copy that logs each packet's timestamp and stops at the first error.
        located = _locate_first_error(source, timeout_s=timeout_s)
        if located is not None:
            stream, at, first = located
            where = f" at {at:.1f} s"
    elif outcome.first_error_at_s is not None:
        where = f" at about {outcome.first_error_at_s:.0f} s"
    if outcome.truncated and outcome.media_error_count < _CORRUPT_MIN_ERRORS:
        data = f"{stream} data" if stream else "data"
        return f"the file is shorter than its index says: {data}{where} is missing ({first})"
    if copied:
        data = f"{stream} data" if stream else "data"
        return f"corrupt {data}{where} ({count} errors while reading the file; first: {first})"
    in_stream = f" in {stream} stream" if stream else ""
    return f"decode errors{in_stream}{where} ({count} errors; first: {first})"


def _stream_of(line: str, facts: ProbeFacts) -> str | None:
    codec = line.split(":", 1)[0].strip()
    if codec and codec == facts.video_codec:
        return "video"
    if codec and codec == facts.audio_codec:
        return "audio"
    return None


_DEBUG_TS = re.compile(r"demuxer -> ist_index:\d+ type:(?P<type>\w+) .*?pkt_pts_time:(?P<pts>[-\d.]+|NOPTS)")


def _locate_first_error(source: str, *, timeout_s: float) -> tuple[str, float, str] | None:
    """(stream type, seconds, message) of the first parser/demuxer error, from a -debug_ts stream copy.

    Runs only after a file was found damaged, so its cost never touches a good file. ffmpeg logs the
    error while reading a packet, then that packet's "demuxer ->" line with its type and timestamp.
    """
    argv = [
        FFMPEG, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "repeat+level+info", "-debug_ts",
        *_flatten(_input_options(source)), "-i", _input_url(source),
        "-map", "0:V:0?", "-map", "0:a:0?", "-c", "copy", "-f", "null", "-",
    ]  # fmt: skip
    redact = _redactor(source)
    found: list[tuple[str, float, str]] = []
    first_error: list[str] = []
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,  # see _run
        )
    except OSError:
        return None
    timer = threading.Timer(min(timeout_s, 600), proc.kill)
    timer.start()
    try:
        while proc.stderr is not None and (raw := proc.stderr.readline(_CHUNK)):
            line = redact(raw.decode("utf-8", "replace").rstrip())
            m = _LOG_LINE.match(line)
            if m and not first_error and m["level"] in _FATAL_LEVELS:
                first_error.append(_message(m["ctx"] or "", m["msg"]))
            elif first_error and (ts := _DEBUG_TS.search(line)) and ts["pts"] != "NOPTS":
                found.append((ts["type"], float(ts["pts"]), first_error[0]))
                break
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    return found[0] if found else None
