"""Proxy planning and making: remux to faststart MP4 when the source is already browser-playable,
else transcode to H.264/AAC; photo previews; posters."""

import contextlib
import fcntl
import logging
import queue
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import ffmpeg

from archive.errors import UndecodableMedia
from archive.i18n import _
from archive.media.ffmpeg.diagnose import _judge
from archive.media.ffmpeg.facts import DerivedFile, MediaKind, ProbeFacts
from archive.media.ffmpeg.run import (
    _ABORT_AFTER_ERRORS,
    _ACCEPTED_DEMUXERS,
    _CORRUPT_MIN_ERRORS,
    _GLOBAL_ARGS,
    _H264_REMUXABLE_PIX_FMTS,
    _PREVIEW_MAX_PX,
    FFMPEG,
    ToolRun,
    _input_options,
    _input_url,
    _output_url,
    _redactor,
    _run,
)

logger = logging.getLogger(__name__)

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
    h264 = facts.video_codec == "h264" and facts.pixel_format in _H264_REMUXABLE_PIX_FMTS
    if h264 and facts.audio_codec in (None, "aac"):
        if facts.container == "mp4" and facts.index_at_front:
            # Already what a browser plays, index first: the original's bytes are the proxy (no second
            # copy, nothing written; the manifest says so). ffmpeg still reads it through once, to the
            # null muxer, so a damaged file is judged exactly as a remux would judge it.
            return _Plan("original", ".mp4", "video/mp4", "null")
        return _Plan("remux", ".mp4", "video/mp4", "mp4")
    if h264:
        # PCM (or other non-AAC) audio beside browser-ready video: copy the video, encode the audio.
        return _Plan("copy-video", ".mp4", "video/mp4", "mp4")
    return _Plan("transcode", ".mp4", "video/mp4", "mp4")


def proxy_is_original(facts: ProbeFacts) -> bool:
    """Whether :func:`make_proxy` serves the original itself as the proxy."""
    return _plan(facts).method == "original"


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
    elif plan.method == "original":
        streams = [inp["V:0"]]
        if facts.audio_codec:
            streams.append(inp["a:0"])
        out_opts.update(c="copy")
        return _compile(ffmpeg.output(*streams, "-", **out_opts))
    elif plan.method == "copy-video":
        # The picture bit for bit (and its display matrix); only the audio is encoded.
        streams = [inp["V:0"], inp["a:0"].filter("aformat", channel_layouts="mono|stereo")]
        out_opts.update({"c:v": "copy", "c:a": "aac", "b:a": "128k", "movflags": "+faststart"})
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

    H.264 (8-bit 4:2:0) with AAC or no audio in an MP4 whose index is at the front is its own proxy
    (method "original": checked, nothing written, ``path`` None); elsewhere it is remuxed to
    faststart MP4; H.264 with other audio keeps its video and gets AAC audio ("copy-video"); other
    video is transcoded to H.264/AAC at most ``height`` lines; audio becomes AAC in .m4a; an image
    becomes a JPEG preview.
    Raises UndecodableMedia when ffmpeg reports the source damaged, MediaToolFailed when ffmpeg fails,
    stalls or runs out of time (retryable).
    """
    plan = _plan(facts)
    redact = _redactor(source)
    final = out_dir / f"proxy{plan.suffix}"
    copied = plan.method in ("remux", "copy-video", "original")
    if plan.method == "original":
        argv = proxy_command(source, facts, final, height=height)
        outcome = _run(
            argv, what="proxy", redact=redact, timeout_s=timeout_s, stall_s=stall_s,
            abort_after_errors=_ABORT_AFTER_ERRORS,
        )  # fmt: skip
        _judge(outcome, source, facts, None, what="proxy", copied=True, timeout_s=timeout_s)
        return DerivedFile(None, plan.content_type, plan.method)
    with _scratch(out_dir, "proxy", plan.suffix) as tmp:
        argv = proxy_command(source, facts, tmp, height=height)
        outcome = _run(
            argv, what="proxy", redact=redact, timeout_s=timeout_s, stall_s=stall_s,
            abort_after_errors=_ABORT_AFTER_ERRORS,
        )  # fmt: skip
        _judge(outcome, source, facts, tmp, what="proxy", copied=copied, timeout_s=timeout_s)
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
            raise UndecodableMedia(
                _("no picture could be decoded for a poster ({media_errors})").format(
                    media_errors=outcome.media_errors[0]
                )
            )
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


# --------------------------------------------------------------------------------------------------
# The `original` plan's damage check, fed by the verification read (one read of the stored bytes)

_PIPE_QUEUE = 8  # chunks (1 MiB each from the verification read) between the hash and ffmpeg
_PIPE_BYTES = 1024 * 1024  # the pipe's kernel buffer (Linux's default limit for unprivileged users)
_F_SETPIPE_SZ: int | None = getattr(fcntl, "F_SETPIPE_SZ", None)


def piped_check_command(facts: ProbeFacts) -> list[str]:
    """ffmpeg reading an MP4 on its standard input to the null muxer, streams copied: the same damage
    check as the `original` plan's ranged read (:func:`proxy_command`), on bytes handed to it."""
    inp = ffmpeg.input("pipe:0", f="mp4", format_whitelist=_ACCEPTED_DEMUXERS, protocol_whitelist="pipe")
    streams = [inp["V:0"]]
    if facts.audio_codec:
        streams.append(inp["a:0"])
    return _compile(ffmpeg.output(*streams, "-", f="null", c="copy"))


class PipedCheck:
    """Judge an original whose proxy is the original itself (:func:`proxy_is_original`) from the bytes
    another reader hands it, so that the verification read (which hashes the stored object) is also
    ffmpeg's read: one S3 read for both instead of two.

    ffmpeg can demux an MP4 from a pipe only when its index comes first: exactly the `original` plan.
    :meth:`write` every byte of the object in order, then :meth:`close`: True when ffmpeg read it all
    and found nothing wrong. False means "not judged clean here": damage, an ffmpeg that stalled or
    failed, or an input that was cut short. The caller then judges with :func:`make_proxy` over a
    ranged read, whose verdict counts, so a pipe can never condemn a file a ranged read would pass.
    Writes block while ffmpeg is busy (at most ``_PIPE_QUEUE`` chunks are queued); a dead ffmpeg
    drains them, so the writer never hangs.
    """

    def __init__(self, facts: ProbeFacts, *, stall_s: float = 120, timeout_s: float = 6 * 3600) -> None:
        self._q: queue.Queue[bytes | None] = queue.Queue(maxsize=_PIPE_QUEUE)
        self._pipe: queue.Queue[IO[bytes] | None] = queue.Queue(maxsize=1)
        self._outcome: ToolRun | None = None
        self._error: BaseException | None = None
        self._closed = False
        self.written = 0
        argv = piped_check_command(facts)
        self._feeder = threading.Thread(target=self._feed, daemon=True, name="piped-check-feed")
        self._runner = threading.Thread(
            target=self._run_tool, args=(argv, stall_s, timeout_s), daemon=True, name="piped-check"
        )
        self._feeder.start()
        self._runner.start()

    def _run_tool(self, argv: list[str], stall_s: float, timeout_s: float) -> None:
        try:
            self._outcome = _run(
                argv, what="proxy", redact=lambda text: text, timeout_s=timeout_s, stall_s=stall_s,
                abort_after_errors=_ABORT_AFTER_ERRORS, stdin=self._pipe.put,
            )  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - reported by close()
            self._error = exc

    def _feed(self) -> None:
        pipe = self._pipe.get()
        broken = pipe is None
        if pipe is not None and _F_SETPIPE_SZ is not None:
            # One chunk per write: with the default 64 KiB pipe each 1 MiB chunk costs 16 wake-ups of
            # each side, which tripled the read's time (616 MB: 0.6 s hashing alone, 1.9 s with the
            # pipe; 1 MiB pipe: see docs/architecture.md). Linux only; elsewhere the default stays.
            with contextlib.suppress(OSError):
                fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)
        while (chunk := self._q.get()) is not None:
            if broken or pipe is None:
                continue  # keep draining: the writer must never block on a dead ffmpeg
            try:
                pipe.write(chunk)
            except (OSError, ValueError):
                broken = True
        if pipe is not None:
            with contextlib.suppress(OSError, ValueError):
                pipe.close()

    def write(self, chunk: bytes) -> None:
        if not self._closed:
            self._q.put(chunk)
            self.written += len(chunk)

    def close(self) -> bool:
        """End of input; wait for ffmpeg and say whether it judged the bytes clean."""
        if not self._closed:
            self._closed = True
            self._q.put(None)
        self._feeder.join()
        self._runner.join()
        if self._error is not None:
            logger.warning("piped damage check did not finish: %s", self._error)
            return False
        out = self._outcome
        if out is None:
            return False
        damaged = out.truncated or out.aborted_for_errors or out.media_error_count >= _CORRUPT_MIN_ERRORS
        if damaged or out.returncode != 0 or out.transport_errors:
            logger.info("piped damage check not clean (%s); judging by a ranged read", out.summary())
            return False
        if out.media_error_count:
            logger.warning(
                "proxy: %d decode error(s), below the corruption threshold of %d; first: %s",
                out.media_error_count, _CORRUPT_MIN_ERRORS, out.media_errors[0],
            )  # fmt: skip
        return True
