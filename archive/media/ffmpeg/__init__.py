"""The ffmpeg/ffprobe layer of the ingest pipeline: probe facts, browser-playable proxies, posters
(modules: run, probe, exif, facts, proxy, diagnose).

A *source* is a local path or an http(s) URL. Workers pass a presigned S3 GET URL, so ffmpeg reads the
original where it lies with HTTP range requests: no original is copied to local disk, and nothing here
opens a source for writing. Media bytes never pass through Python either; we read ffmpeg's progress lines
and a bounded number of its log lines, nothing else.

Every ffmpeg/ffprobe run has a watchdog: a hard timeout, and for ffmpeg a stall detector on its
``-progress`` output. When either fires the process is killed and :class:`MediaToolFailed` (retryable)
is raised. A file ffmpeg cannot read raises :class:`UndecodableMedia` (permanent) with a reason a person
understands; the original is still archived, hashed and signed.
"""

from archive.media.ffmpeg.facts import DerivedFile, MediaKind, ProbeFacts
from archive.media.ffmpeg.probe import probe
from archive.media.ffmpeg.proxy import PipedCheck, make_poster, make_proxy, proxy_command, proxy_is_original
from archive.media.ffmpeg.run import FFMPEG, FFPROBE, ToolRun, index_at_front

__all__ = [
    "FFMPEG",
    "FFPROBE",
    "DerivedFile",
    "MediaKind",
    "PipedCheck",
    "ProbeFacts",
    "ToolRun",
    "index_at_front",
    "make_poster",
    "make_proxy",
    "probe",
    "proxy_command",
    "proxy_is_original",
]
