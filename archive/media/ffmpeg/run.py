"""Running ffmpeg and ffprobe under a watchdog: argument safety (protocol and demuxer allow-lists,
redacted URLs), bounded log reading, a hard timeout and a stalled-progress kill; and ffprobe's JSON
with a reason a person understands when it cannot read a file."""

import ctypes
import json
import logging
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, Any, cast
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from archive.errors import MediaToolFailed, UndecodableMedia
from archive.i18n import _
from archive.media.ffmpeg.facts import _opt_int

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
class ToolRun:
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
        self.outcome = ToolRun(returncode=0)
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
    stdin: Callable[[IO[bytes] | None], None] | None = None,
) -> ToolRun:
    """Run a tool with a hard timeout and (for ffmpeg, which prints -progress) a stall detector.

    ``stdin``: the tool reads its input from a pipe; the callable is handed the pipe's writing end
    once the process runs (None if it could not start) and must write and close it from another
    thread (a watchdog kill makes its writes fail with BrokenPipeError).

    Raises MediaToolFailed when the watchdog fires or the process cannot start. Otherwise returns what
    happened (exit status, classified error lines) for the caller to judge.
    """
    logger.debug("running %s", redact(" ".join(argv)))
    _prctl()  # resolve before fork: the child must not load libraries
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Safe despite threads in the worker: it only calls a prctl resolved before the fork.
            preexec_fn=_die_with_parent,
        )
    except OSError as exc:
        if stdin is not None:
            stdin(None)
        raise MediaToolFailed(f"{what}: cannot start {argv[0]}: {exc}") from exc
    if stdin is not None:
        stdin(proc.stdin)

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
                raise UndecodableMedia(_("the file is empty (0 bytes)"))
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


def _unreadable_reason(source: str, outcome: ToolRun, *, timeout_s: float) -> str:
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
        # bandit B310 silenced: the scheme was checked above (_is_url: http or https only, no file:)
        with urlopen(request, timeout=min(timeout_s, 30)) as response:  # noqa: S310  # nosec B310
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


def _read_at(source: str, offset: int, n: int, *, timeout_s: float) -> bytes:
    """Up to ``n`` bytes of a source at ``offset`` (one HTTP range request for a URL)."""
    if not _is_url(source):
        with Path(source).open("rb") as f:
            f.seek(offset)
            return f.read(n)
    request = Request(source, headers={"Range": f"bytes={offset}-{offset + n - 1}"})  # noqa: S310 - http(s) only
    try:
        with urlopen(request, timeout=min(timeout_s, 30)) as response:  # noqa: S310  # nosec B310 - as above (http or https only)
            data: bytes = response.read(n)
            return data
    except HTTPError as exc:
        exc.close()
        return b""


def index_at_front(source: str, *, timeout_s: float = 30, max_boxes: int = 64) -> bool | None:
    """For an ISO BMFF (MP4/MOV) source: does the index box ('moov') come before the media data
    ('mdat')? Walks the top-level box headers only (a few 16-byte range reads). None if neither is
    found among the first ``max_boxes`` boxes or the source cannot be read."""
    pos = 0
    try:
        for _ in range(max_boxes):
            head = _read_at(source, pos, 16, timeout_s=timeout_s)
            if len(head) < 8:
                return None
            size = int.from_bytes(head[:4], "big")
            kind = head[4:8]
            if kind == b"moov":
                return True
            if kind == b"mdat":
                return False
            if size == 1:
                if len(head) < 16:
                    return None
                size = int.from_bytes(head[8:16], "big")
            if size < 8:
                return None  # 0 (to the end of the file) or damaged: neither index found before it
            pos += size
    except (URLError, OSError, ValueError):
        return None
    return None


def _show_bytes(head: bytes) -> str:
    if not head:
        return "nothing"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return repr(head.decode("ascii"))
    return "bytes " + head.hex(" ")
