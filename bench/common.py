"""Shared harness for the benchmarks: a private Custody stack on the real services.

What ``Stack`` gives a benchmark, all its own so a bench never disturbs a test run beside it:
- a fresh PostgreSQL database (migrated), because production runs PostgreSQL and the tests do too;
  SQLite (the embedded default) serialises writers and would measure a different system;
- its own Redis database index (not 0: the tests ``FLUSHDB`` index 0, and a test worker on the same
  queues would otherwise take our tasks and drop them as "no such media");
- its own buckets (originals with Object Lock, as the API makes them; derived);
- its own data folder (signing keys) under bench/out/;
- the API (uvicorn) and the workers (Celery) as subprocesses, laid out as ``custody serve`` lays them
  out in production: one ingest worker (threads, -c 2) and one transcode worker (-c 1);
- an officer account and its token.

Also here: sample files (seeded, generated at run time, cached in bench/out/cache), a peak-RSS sampler
for process trees, and a timed ``custody dock`` runner. bench/ imports nothing from tests/.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
CACHE = OUT / "cache"
MB = 1_000_000  # throughput figures are in decimal MB/s, as disks and networks are quoted
MiB = 1024 * 1024


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- services


def service_env() -> dict[str, str]:
    """CUSTODY_* of the test services (Redis, PostgreSQL, RGW): from the environment when
    ``make bench`` already evaluated deploy/services.sh, else by running it (idempotent)."""
    needed = ("CUSTODY_TEST_DATABASE_URL", "CUSTODY_REDIS_URL", "CUSTODY_S3_ENDPOINT")
    if all(os.environ.get(k) for k in needed):
        return {k: v for k, v in os.environ.items() if k.startswith("CUSTODY_")}
    out = subprocess.run(
        ["bash", str(ROOT / "deploy" / "services.sh"), "up", "test"],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"could not start test services:\n{out.stderr[-3000:]}")
    env = {}
    for line in out.stdout.splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


def _admin_conninfo(url: str) -> str:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return f"host={u.host} port={u.port} user=postgres dbname=postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pick_redis_db(url: str) -> str:
    """An empty Redis database index >= 8 (tests use the index in CUSTODY_REDIS_URL, 0)."""
    import redis

    base = url.rsplit("/", 1)[0]
    for db in range(8, 16):
        r = redis.Redis.from_url(f"{base}/{db}")
        if r.dbsize() == 0 or (r.get("custody:bench-owner") is not None and _stale_owner(r)):
            r.flushdb()
            r.set("custody:bench-owner", str(os.getpid()))
            return f"{base}/{db}"
    raise SystemExit("no free Redis database index in 8..15")


def _stale_owner(r: Any) -> bool:
    """A database left by a bench run whose process is gone may be reused."""
    pid = int(r.get("custody:bench-owner") or 0)
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return True
    return False


# --------------------------------------------------------------------------- processes


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        """SIGTERM to the process group we started (start_new_session), then SIGKILL leftovers."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


def spawn(name: str, cmd: list[str], env: dict[str, str], log_path: Path) -> Proc:
    fh = log_path.open("ab")
    p = subprocess.Popen(
        cmd,
        env={**os.environ, **env},
        stdout=fh,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,
    )
    fh.close()
    return Proc(name, p, log_path)


# --------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    """A private Custody deployment. Use as a context manager; everything is removed on exit."""

    with_workers: bool = True
    with_api: bool = True
    part_bytes: int | None = None  # None: the product default (16 MiB)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, Proc] = field(default_factory=dict)
    url: str = ""
    token: str = ""
    officer: str = "0815"
    tmp: Path = OUT
    db_name: str = ""
    admin: str = ""

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        t0 = time.monotonic()
        svc = service_env()
        self.tmp = OUT / f"run-{self.tag}"
        self.tmp.mkdir(parents=True, exist_ok=True)
        pg = svc["CUSTODY_TEST_DATABASE_URL"]
        self.admin = _admin_conninfo(pg)
        self.db_name = f"custody_bench_{self.tag}"
        import psycopg
        from sqlalchemy.engine import make_url

        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.db_name} OWNER custody")
        db_url = make_url(pg).set(database=self.db_name).render_as_string(hide_password=False)
        self.env = {
            "CUSTODY_DATABASE_URL": db_url,
            "CUSTODY_REDIS_URL": _pick_redis_db(svc["CUSTODY_REDIS_URL"]),
            "CUSTODY_S3_ENDPOINT": svc["CUSTODY_S3_ENDPOINT"],
            "CUSTODY_S3_ACCESS_KEY": svc["CUSTODY_S3_ACCESS_KEY"],
            "CUSTODY_S3_SECRET_KEY": svc["CUSTODY_S3_SECRET_KEY"],
            "CUSTODY_S3_SECURE": "false",
            "CUSTODY_BUCKET_ORIGINALS": f"bench-{self.tag}-originals",
            "CUSTODY_BUCKET_DERIVED": f"bench-{self.tag}-derived",
            "CUSTODY_DATA_DIR": str(self.tmp / "var"),
        }
        if self.part_bytes:
            self.env["CUSTODY_UPLOAD_PART_BYTES"] = str(self.part_bytes)
        os.environ.update(self.env)
        from archive.accounts.models import Role
        from archive.accounts.services import add_user
        from archive.config import get_settings
        from archive.db import make_engine, session_scope
        from archive.storage import MinioStore
        from migrations import migrate

        get_settings.cache_clear()
        s = get_settings()
        s.data_dir.mkdir(parents=True, exist_ok=True)
        migrate(s)
        MinioStore(s).ensure_buckets()
        engine = make_engine(s.resolved_database_url())
        with session_scope(engine) as session:
            _, self.token = add_user(session, self.officer, Role.OFFICER)
        engine.dispose()
        if self.with_api:
            self._start_api()
        if self.with_workers:
            self._start_workers()
        log(f"stack {self.tag} up in {time.monotonic() - t0:.1f} s (API {self.url})")

    def _start_api(self) -> None:
        import httpx

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "uvicorn", "api.app:app", "--host", "127.0.0.1", "--port", str(port)]
        cmd.append("--no-access-log")  # as `custody serve` runs it
        p = self.procs["api"] = spawn("api", cmd, self.env, self.tmp / "api.log")
        deadline = time.monotonic() + 90  # a loaded 2-core machine takes its time importing
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/healthz", timeout=2)
                return
            except httpx.HTTPError:
                if p.popen.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"API did not start:\n{p.tail()}")

    def _start_workers(self) -> None:
        import redis

        from archive.config import get_settings

        s = get_settings()
        celery = [sys.executable, "-m", "celery", "-A", "workers.celery_app"]
        layout = (
            ("ingest", "ingest", s.ingest_worker_pool, str(s.ingest_worker_concurrency)),
            ("transcode", "transcode", "prefork", "1"),
        )
        for name, queue, pool, conc in layout:
            self.procs[name] = spawn(
                name,
                [
                    *celery,
                    "worker",
                    "-Q",
                    queue,
                    "--pool",
                    pool,
                    "-c",
                    conc,
                    "-n",
                    f"bench-{name}-{self.tag}@%h",
                    "-l",
                    "INFO",
                ],
                self.env,
                self.tmp / f"{name}.log",
            )
        r = redis.Redis.from_url(self.env["CUSTODY_REDIS_URL"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            beats = {k.decode() for k in r.scan_iter("custody:worker-heartbeat:*")}
            if all(any(f"bench-{n}-{self.tag}" in b for b in beats) for n in ("ingest", "transcode")):
                return
            for name in ("ingest", "transcode"):
                if self.procs[name].popen.poll() is not None:
                    raise RuntimeError(f"worker {name} died:\n{self.procs[name].tail()}")
            time.sleep(0.2)
        raise RuntimeError(f"workers did not start:\n{self.procs['ingest'].tail()}")

    @property
    def worker_pids(self) -> list[int]:
        return [self.procs[n].pid for n in ("ingest", "transcode") if n in self.procs]

    def engine(self) -> Any:
        from archive.db import make_engine

        return make_engine(self.env["CUSTODY_DATABASE_URL"])

    def store(self) -> Any:
        from archive.config import get_settings
        from archive.storage import MinioStore

        return MinioStore(get_settings())

    def close(self) -> None:
        for p in reversed(list(self.procs.values())):
            p.stop()
        if self.env:
            with contextlib.suppress(Exception):
                empty_bucket(self.env["CUSTODY_BUCKET_ORIGINALS"], remove=True)
                empty_bucket(self.env["CUSTODY_BUCKET_DERIVED"], remove=True)
            with contextlib.suppress(Exception):
                import redis

                redis.Redis.from_url(self.env["CUSTODY_REDIS_URL"]).flushdb()
        if self.db_name and self.admin:
            with contextlib.suppress(Exception):
                import psycopg

                with psycopg.connect(self.admin, autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")
        if os.environ.get("BENCH_KEEP_LOGS") != "1":
            shutil.rmtree(self.tmp, ignore_errors=True)


def minio_client() -> Any:
    """A plain minio client on the test S3 server (for baselines and cleanup)."""
    from minio import Minio

    svc = service_env()
    return Minio(
        svc["CUSTODY_S3_ENDPOINT"],
        access_key=svc["CUSTODY_S3_ACCESS_KEY"],
        secret_key=svc["CUSTODY_S3_SECRET_KEY"],
        secure=False,
        region="us-east-1",
    )


def empty_bucket(bucket: str, remove: bool = False) -> None:
    """Delete every version (the originals bucket is versioned), then optionally the bucket:
    the test S3 server keeps objects in RAM (memstore, 8 GiB cap)."""
    c = minio_client()
    if not c.bucket_exists(bucket):
        return
    for obj in c.list_objects(bucket, recursive=True, include_version=True):
        c.remove_object(bucket, obj.object_name, version_id=obj.version_id)
    for up in _incomplete_uploads(c, bucket):
        with contextlib.suppress(Exception):
            c._abort_multipart_upload(bucket, up[0], up[1])
    if remove:
        c.remove_bucket(bucket)


def _incomplete_uploads(c: Any, bucket: str) -> list[tuple[str, str]]:
    from minio.error import S3Error

    try:
        res = c._list_multipart_uploads(bucket)
    except S3Error:
        return []
    return [(u.object_name, u.upload_id) for u in res.uploads]


# --------------------------------------------------------------------------- sample data


def random_file(path: Path, size: int, seed: int) -> Path:
    """Incompressible, reproducible bytes: AES-128-CTR keystream from a seed (AES-NI, ~GB/s).
    os.urandom would do too but is slower and not reproducible."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if path.exists() and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(f"custody-bench-{seed}".encode()).digest()[:16]
    enc = Cipher(algorithms.AES(key), modes.CTR(b"\0" * 16)).encryptor()
    zeros = bytes(8 * MiB)
    tmp = path.with_suffix(".part")
    with tmp.open("wb") as fh:
        left = size
        while left:
            n = min(left, len(zeros))
            fh.write(enc.update(zeros[:n]))
            left -= n
    tmp.replace(path)
    return path


FF = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
EPOCH = 1718028180
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"


def _bodycam_vf(label: str) -> str:
    font = f"fontfile={FONT}" if Path(FONT).exists() else "font=Mono"
    return (
        "noise=alls=10:allf=t:all_seed=4711,"
        f"drawtext={font}:text='{label}  %{{pts\\:gmtime\\:{EPOCH}}} Z':x=40:y=h-90:fontsize=42"
        ":fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=8"
    )


AUDIO = (
    "sine=frequency=310:sample_rate=48000[s];"
    "anoisesrc=color=pink:amplitude=0.05:sample_rate=48000:seed=4711[n];[s][n]amix=inputs=2:duration=first"
)


def long_h264_clip(minutes: int = 10) -> Path:
    """10-minute 1080p30 H.264 ~8 Mbit/s + AAC, moov at the end (as recorders write it): 60 s encoded,
    then stream-copy looped. Made by tests/make-sample-media.sh --long-only when the repository has it,
    else by the same ffmpeg commands here. Cached in bench/out/cache."""
    out = CACHE / f"long_bodycam_h264_1080p30_{minutes}min.mp4"
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    script = ROOT / "tests" / "make-sample-media.sh"
    if script.exists():
        log(f"generating {out.name} with {script.relative_to(ROOT)} --long-only (about 1 min of CPU)")
        env = {**os.environ, "LONG_MINUTES": str(minutes)}
        subprocess.run(["bash", str(script), "--long-only", str(CACHE)], check=True, env=env)
        if out.exists():
            return out
        raise RuntimeError(f"{script} did not write {out}")
    seg = CACHE / ".long_segment_60s.mp4"
    log(f"generating {out.name} (about 1 min of CPU)")
    enc = ["-c:v", "libx264", "-preset", "superfast", "-profile:v", "high", "-pix_fmt", "yuv420p"]
    enc += ["-b:v", "8M", "-maxrate", "8M", "-bufsize", "16M", "-g", "30"]
    enc += ["-c:a", "aac", "-b:a", "96k", "-ac", "1"]
    src = f"testsrc2=size=1920x1080:rate=30,{_bodycam_vf('BC-4711 OFC 0815')}"
    subprocess.run(
        [*FF, "-f", "lavfi", "-i", src, "-f", "lavfi", "-i", AUDIO, "-t", "60", *enc, str(seg)], check=True
    )
    tmp = out.with_suffix(".tmp.mp4")
    loop = [
        "-stream_loop",
        str(minutes - 1),
        "-i",
        str(seg),
        "-map",
        "0",
        "-c",
        "copy",
        "-t",
        str(minutes * 60),
    ]
    subprocess.run(
        [*FF, *loop, "-metadata", "creation_time=2024-06-10T14:03:00.000000Z", str(tmp)], check=True
    )
    seg.unlink()
    tmp.replace(out)
    return out


def hevc_clip(seconds: int = 30) -> Path:
    """30 s 1080p30 HEVC (hvc1) + AAC, as make-sample-media.sh's (b). Cached."""
    out = CACHE / f"bodycam_hevc_aac_1080p30_{seconds}s.mp4"
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    log(f"generating {out.name}")
    src = f"testsrc2=size=1920x1080:rate=30,{_bodycam_vf('BC-4712 OFC 0816')}"
    tmp = out.with_suffix(".tmp.mp4")
    enc = ["-c:v", "libx265", "-preset", "ultrafast", "-b:v", "4M", "-pix_fmt", "yuv420p", "-tag:v", "hvc1"]
    enc += ["-x265-params", "log-level=error", "-c:a", "aac", "-b:a", "96k", "-ac", "1"]
    inputs = ["-f", "lavfi", "-i", src, "-f", "lavfi", "-i", AUDIO, "-t", str(seconds)]
    subprocess.run([*FF, *inputs, *enc, "-movflags", "+faststart", str(tmp)], check=True)
    tmp.replace(out)
    return out


# --------------------------------------------------------------------------- memory


class PeakRSS:
    """Peak memory of process trees, sampled every ``interval`` s in a thread (children included:
    a Celery pool, ffmpeg). Per tree: peak of the summed RSS (counts shared pages once per process,
    so it over-states a forked pool), peak of the summed PSS (shares them out: the honest total), and
    the peak RSS of its largest single process."""

    def __init__(self, roots: dict[str, list[int]], interval: float = 0.05, pss: bool = True) -> None:
        self.roots = roots
        self.interval = interval
        self.pss = pss
        self.peak: dict[str, dict[str, float]] = {
            name: {"rss": 0.0, "pss": 0.0, "max_proc_rss": 0.0, "procs": 0} for name in roots
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="peak-rss")
        self.samples = 0

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _tree(self, pids: list[int]) -> list[Any]:
        import psutil

        out = []
        for pid in pids:
            try:
                p = psutil.Process(pid)
                out.append(p)
                out.extend(p.children(recursive=True))
            except psutil.Error:
                continue
        return out

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            for name, pids in self.roots.items():
                rss = pss = biggest = 0
                procs = self._tree(pids)
                for p in procs:
                    try:
                        if self.pss:
                            mi = p.memory_full_info()
                            pss += mi.pss
                        else:
                            mi = p.memory_info()
                        rss += mi.rss
                        biggest = max(biggest, mi.rss)
                    except psutil.Error:
                        continue
                pk = self.peak[name]
                pk["rss"] = max(pk["rss"], rss / MiB)
                pk["pss"] = max(pk["pss"], pss / MiB)
                pk["max_proc_rss"] = max(pk["max_proc_rss"], biggest / MiB)
                pk["procs"] = max(pk["procs"], len(procs))
            self.samples += 1
            self._stop.wait(self.interval)


# --------------------------------------------------------------------------- the dock


@dataclass
class DockRun:
    wall_s: float
    returncode: int
    lines: list[tuple[float, str]]  # (seconds since start, stdout line)
    stderr: str

    def safe(self) -> list[dict[str, Any]]:
        out = []
        for t, line in self.lines:
            parts = line.split()
            if parts and parts[0] == "SAFE":
                out.append({"t": t, "rel": parts[1], "sha256": parts[2], "media_id": parts[3]})
        return out


def dock_cmd(stack: Stack, folder: Path, state_file: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cli.main",
        "--lang",
        "en",  # the summary lines are parsed (SAFE ...); messages are zh-CN by default
        "dock",
        str(folder),
        "--officer",
        stack.officer,
        "--device",
        "BC-BENCH-1",
        "--server",
        stack.url,
        "--token",
        stack.token,
        "--state-file",
        str(state_file),
    ]


def run_dock(
    stack: Stack,
    folder: Path,
    on_start: Any = None,
    on_line: Any = None,
) -> DockRun:
    """``custody dock FOLDER`` as an officer runs it, timed from process start; stdout lines are
    timestamped as they arrive. ``on_start(pid)`` runs right after the spawn (memory sampling)."""
    state = stack.tmp / f"dock-state-{uuid.uuid4().hex[:6]}.json"
    env = {**os.environ, **stack.env}
    env.pop("PYTHONPATH", None)  # the dock is a client: it never imports archive.ingest.pipeline
    t0 = time.monotonic()
    p = subprocess.Popen(
        dock_cmd(stack, folder, state),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    if on_start:
        on_start(p.pid)
    err: list[str] = []
    t_err = threading.Thread(target=lambda: err.append(p.stderr.read() if p.stderr else ""), daemon=True)
    t_err.start()
    lines = []
    assert p.stdout is not None
    for line in p.stdout:
        t = time.monotonic() - t0
        lines.append((t, line.rstrip("\n")))
        if on_line:
            on_line(t, line.rstrip("\n"))
    rc = p.wait()
    wall = time.monotonic() - t0
    t_err.join(5)
    run = DockRun(wall, rc, lines, "".join(err))
    if rc != 0:
        log(f"dock exited {rc}:\n" + "\n".join(ln for _, ln in lines) + "\n" + run.stderr[-2000:])
    return run


def server_timings(stack: Stack, media_ids: list[str]) -> list[dict[str, Any]]:
    """Per item, from the server's own records (same machine clock): upload created -> media received
    (the tus upload phase), received -> verified, and each later step, from the custody log."""
    from sqlmodel import Session, select

    from archive.ingest.models import Upload
    from archive.media.models import Media
    from archive.models import Event

    engine = stack.engine()
    out = []
    with Session(engine) as s:
        for mid in media_ids:
            m = s.get(Media, mid)
            if m is None:
                continue
            up = s.get(Upload, m.upload_id) if m.upload_id else None
            evs = s.exec(
                select(Event).where(Event.subject_type == "media", Event.subject_id == mid).order_by(Event.id)
            ).all()
            steps = {e.action: e.at for e in evs}
            row: dict[str, Any] = {"media_id": mid, "size": m.size, "state": m.state.value}
            if up is not None:
                row["upload_s"] = (m.received_at - up.created_at).total_seconds()
            for action in ("media.verify", "media.probe", "media.derive", "media.sign"):
                if action in steps:
                    row[action] = (steps[action] - m.received_at).total_seconds()
            out.append(row)
    engine.dispose()
    return out


def wait_state(stack: Stack, media_id: str, states: set[str], timeout: float = 900) -> tuple[str, float]:
    """Poll GET /api/v1/media/{id} until its state is one of ``states``; returns (state, monotonic time)."""
    import httpx

    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {stack.token}"}) as c:
        while True:
            st = c.get(f"/api/v1/media/{media_id}").json().get("state", "")
            if st in states:
                return st, time.monotonic()
            if time.monotonic() > deadline:
                raise TimeoutError(f"media {media_id} still {st} after {timeout} s")
            time.sleep(0.1)


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Each bench leaves its figures as JSON in bench/out/ for run_all's summary."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    return path


def machine() -> str:
    import platform

    import psutil

    return (
        f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 1024**3:.0f} GiB RAM, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"load avg {os.getloadavg()[0]:.2f} (other work on the machine skews timings)"
    )
