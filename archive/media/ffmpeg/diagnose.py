"""Damage diagnosis: after a run, judge whether errors came from a damaged source (undecodable,
permanent) or from the tools (retryable), and where in the file the first error lies."""

import logging
import re
import subprocess
import threading
from pathlib import Path

from archive.errors import MediaToolFailed, UndecodableMedia
from archive.media.ffmpeg.facts import ProbeFacts
from archive.media.ffmpeg.run import (
    _CHUNK,
    _CORRUPT_MIN_ERRORS,
    _FATAL_LEVELS,
    _LOG_LINE,
    FFMPEG,
    ToolRun,
    _die_with_parent,
    _flatten,
    _input_options,
    _input_url,
    _message,
    _redactor,
)

logger = logging.getLogger(__name__)


def _judge(
    outcome: ToolRun,
    source: str,
    facts: ProbeFacts,
    output: Path | None,
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
    if output is not None and (not output.is_file() or output.stat().st_size == 0):
        raise MediaToolFailed(f"{what}: ffmpeg exited 0 but wrote nothing ({outcome.summary()})")
    if outcome.media_error_count:
        logger.warning(
            "%s: %d decode error(s), below the corruption threshold of %d; first: %s",
            what, outcome.media_error_count, _CORRUPT_MIN_ERRORS, outcome.media_errors[0],
        )  # fmt: skip


def _corruption_reason(
    outcome: ToolRun, source: str, facts: ProbeFacts, *, copied: bool, timeout_s: float
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
