"""Object storage: a small interface and its S3 implementation through the ``minio`` client.

Everything the archive stores goes through :class:`ObjectStore`. ``S3Error`` and transport
errors are translated into :class:`StorageError` / :class:`ObjectMissing` here, at the edge.
Two buckets: originals (versioning + Object Lock enabled at creation, because S3 only allows
Object Lock on new buckets and retention will rely on it) and derived files (proxies, posters).

Encryption at rest: :class:`MinioStore` writes every object with SSE-C under a key the S3 server
never keeps (archive.storage_keys) and reads it back with that key; the interface does not change.
``presigned_get`` cannot hand out a plain presigned S3 URL for such an object (the key would have to
travel with every request), so it returns a loopback URL served by this process that streams the
object decrypted, with Range support (archive.object_proxy): ffmpeg reads it as it read S3.
"""

from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from xml.etree import ElementTree

import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.datatypes import Part
from minio.error import MinioException, S3Error
from minio.retention import Retention
from minio.sse import SseCustomerKey

from archive.config import Settings
from archive.errors import ObjectMissing, StorageError
from archive.storage_keys import StorageKeys

if TYPE_CHECKING:
    from archive.object_proxy import ObjectProxy

READ_CHUNK = 1024 * 1024
PUT_PART_BYTES = 16 * 1024 * 1024  # put_file: larger files go as multipart uploads of this part size
PUT_PARALLEL = 2
KEY_ID_META = "custody-key-id"  # user metadata naming the master key an object was written with
SSE_ALGORITHM_HEADER = "x-amz-server-side-encryption-customer-algorithm"
_T = TypeVar("_T")
_Meta = dict[str, str | list[str] | tuple[str]]  # minio's metadata type


@dataclass(frozen=True)
class LockState:
    retain_until: datetime | None
    legal_hold: bool


def _parse_s3_time(value: str) -> datetime:
    # RGW sends up to 9 fractional digits; Python reads at most 6.
    head, _, frac = value.rstrip("Z").partition(".")
    parsed = datetime.fromisoformat(head + (("." + frac[:6]) if frac else "")).replace(tzinfo=UTC)
    return parsed


@dataclass(frozen=True)
class PartInfo:
    """One part of an S3 multipart upload as the server lists it (ListParts)."""

    number: int
    etag: str
    size: int


@dataclass(frozen=True)
class PendingMultipart:
    """An S3 multipart upload not yet completed or aborted (ListMultipartUploads)."""

    key: str
    upload_id: str
    initiated: datetime | None


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    content_type: str | None
    etag: str = ""


class ObjectStore(Protocol):
    originals: str
    derived: str

    def ensure_buckets(self) -> None: ...
    def ping(self) -> None: ...
    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str, retain_until: datetime | None = None
    ) -> None: ...
    def put_file(self, bucket: str, key: str, path: Path, content_type: str) -> None: ...
    def stat(self, bucket: str, key: str) -> ObjectInfo: ...
    def exists(self, bucket: str, key: str) -> bool: ...
    def read_bytes(self, bucket: str, key: str) -> bytes: ...
    def delete(self, bucket: str, key: str) -> None: ...
    def versions(self, bucket: str, key: str) -> list[str | None]: ...
    def list_keys(self, bucket: str, prefix: str) -> list[str]: ...
    def presigned_get(self, bucket: str, key: str, expires: timedelta) -> str: ...
    def lock_state(self, bucket: str, key: str) -> LockState: ...
    def extend_retention(self, bucket: str, key: str, until: datetime) -> datetime: ...
    def set_legal_hold(self, bucket: str, key: str, on: bool) -> None: ...

    @contextmanager
    def open_stream(
        self, bucket: str, key: str, offset: int = 0, length: int | None = None
    ) -> Iterator[Iterator[bytes]]: ...

    def start_multipart(self, bucket: str, key: str, content_type: str) -> str: ...
    def upload_part(self, bucket: str, key: str, upload_id: str, number: int, data: bytes) -> str: ...
    def complete_multipart(
        self, bucket: str, key: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> None: ...
    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None: ...
    def presign_upload_part(
        self, bucket: str, key: str, upload_id: str, number: int, expires: timedelta
    ) -> str: ...
    def list_parts(
        self, bucket: str, key: str, upload_id: str, first: int = 1, last: int | None = None
    ) -> list[PartInfo]: ...
    def upload_part_headers(self, bucket: str, key: str) -> dict[str, str]: ...
    def list_multipart_uploads(self, bucket: str, prefix: str) -> list[PendingMultipart]: ...
    def list_keys_modified(self, bucket: str, prefix: str) -> list[tuple[str, datetime]]: ...
    def presigned_get_public(
        self, bucket: str, key: str, expires: timedelta, content_type: str, filename: str
    ) -> str: ...


_MISSING = {"NoSuchKey", "NoSuchUpload", "NoSuchBucket", "NoSuchVersion"}


def _translate(exc: Exception, what: str) -> Exception:
    if isinstance(exc, S3Error) and exc.code in _MISSING:
        return ObjectMissing(f"{what}: {exc.code}")
    return StorageError(f"{what}: {exc}")


def _wrong_key(exc: Exception) -> bool:
    """S3's answer to a request whose SSE-C key is not the object's (or is missing)."""
    return isinstance(exc, S3Error) and exc.code in {"BadRequest", "InvalidArgument", "AccessDenied"}


class MinioStore:
    """The S3 implementation, on Ceph RGW (tests, CI, production; see docs/operations.md) or any
    S3 server with Object Lock."""

    def __init__(self, settings: Settings) -> None:
        self.originals = settings.bucket_originals
        self.derived = settings.bucket_derived
        # Explicit pool: bounded retries and timeouts, so a dead S3 server surfaces as an error
        # within seconds instead of hanging an upload or a health check.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=300),
            maxsize=16,
            retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        self.http = http
        self.client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            region=settings.s3_region,
            http_client=http,
        )
        # Signs URLs for the docks, for the endpoint they reach; never sends a request itself
        # (the region is given, so presigning needs no round trip).
        public_secure = settings.s3_public_secure
        self.public_client = Minio(
            settings.s3_public_endpoint or settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure if public_secure is None else public_secure,
            region=settings.s3_region,
            http_client=http,
        )
        self.keys = StorageKeys.from_settings(settings)
        # which master key opens an object (None: stored in clear, from before encryption): found
        # once per object and process by trying the keys, then remembered
        self._key_ids: OrderedDict[tuple[str, str], str | None] = OrderedDict()
        self._key_ids_lock = threading.Lock()
        self._proxy: ObjectProxy | None = None
        self._proxy_pid = 0

    # ------------------------------------------------------------------ encryption at rest
    def _write_sse(self, bucket: str, key: str) -> tuple[SseCustomerKey | None, _Meta]:
        """The SSE-C key and metadata for a new object (the current master key)."""
        if self.keys is None:
            return None, {}
        self._refresh_keys()
        self._remember(bucket, key, self.keys.current)
        return self.keys.sse(self.keys.current, bucket, key), {KEY_ID_META: self.keys.current}

    def _refresh_keys(self, force: bool = False) -> None:
        """Key files rotated by another process (``custody keys rotate-storage``) are picked up:
        new objects get the new current key, and objects written under it are readable."""
        if self.keys is not None and self.keys.folder is not None and (force or self.keys.stale()):
            self.keys = StorageKeys.from_folder(self.keys.folder)

    def _remember(self, bucket: str, key: str, key_id: str | None) -> None:
        with self._key_ids_lock:
            self._key_ids[(bucket, key)] = key_id
            self._key_ids.move_to_end((bucket, key))
            while len(self._key_ids) > 10_000:
                self._key_ids.popitem(last=False)

    def _find_key_id(self, bucket: str, key: str) -> str | None:
        """The master key that opens ``key``, by trying each (current first): one HEAD each."""
        assert self.keys is not None
        self._refresh_keys()
        last: Exception | None = None
        for key_id in self.keys.ids_to_try():
            try:
                st = self.client.stat_object(bucket, key, ssec=self.keys.sse(key_id, bucket, key))
            except (MinioException, urllib3.exceptions.HTTPError) as exc:
                if not _wrong_key(exc):
                    raise _translate(exc, f"stat {bucket}/{key}") from exc
                last = exc
                continue
            headers = {k.lower() for k in (st.metadata or {})}
            found = key_id if SSE_ALGORITHM_HEADER in headers else None  # None: a clear object
            self._remember(bucket, key, found)
            return found
        raise StorageError(f"no storage key opens {bucket}/{key} (tried {len(self.keys.keys)}): {last}")

    def _read_sse(self, bucket: str, key: str) -> SseCustomerKey | None:
        if self.keys is None:
            return None
        with self._key_ids_lock:
            known = (bucket, key) in self._key_ids
            key_id = self._key_ids.get((bucket, key))
        if not known:
            key_id = self._find_key_id(bucket, key)
        return None if key_id is None else self.keys.sse(key_id, bucket, key)

    def _with_read_key(self, bucket: str, key: str, call: Callable[[SseCustomerKey | None], _T]) -> _T:
        """Run ``call`` with the object's read key; if the remembered key no longer fits (the
        object was replaced since), find it again once."""
        try:
            return call(self._read_sse(bucket, key))
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            if self.keys is None or not _wrong_key(exc):
                raise
            with self._key_ids_lock:
                self._key_ids.pop((bucket, key), None)
            return call(self._read_sse(bucket, key))

    def _stat_object(self, bucket: str, key: str) -> Any:
        return self._with_read_key(bucket, key, lambda ssec: self.client.stat_object(bucket, key, ssec=ssec))

    def key_id_of(self, bucket: str, key: str) -> str | None:
        """The id of the master key ``key`` is encrypted with (None: stored in clear)."""
        if self.keys is None:
            return None
        try:
            return self._find_key_id(bucket, key)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc, f"stat {bucket}/{key}") from exc

    def ensure_buckets(self) -> None:
        try:
            if not self.client.bucket_exists(self.originals):
                self.client.make_bucket(self.originals, object_lock=True)
            if not self.client.bucket_exists(self.derived):
                self.client.make_bucket(self.derived)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc, "creating buckets") from exc

    def ping(self) -> None:
        try:
            if not self.client.bucket_exists(self.originals):
                raise StorageError(f"bucket {self.originals} does not exist")
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc, "S3 ping") from exc

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str, retain_until: datetime | None = None
    ) -> None:
        """Store ``data``; with ``retain_until``, under COMPLIANCE retention set in the same request (the
        bucket must have Object Lock), so the object is never readable without its lock."""
        sse, meta = self._write_sse(bucket, key)
        retention = Retention(COMPLIANCE, retain_until) if retain_until is not None else None
        try:
            self.client.put_object(
                bucket,
                key,
                io.BytesIO(data),
                len(data),
                content_type=content_type,
                sse=sse,
                metadata=meta,
                retention=retention,
            )
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc, f"put {bucket}/{key}") from exc

    def put_file(self, bucket: str, key: str, path: Path, content_type: str) -> None:
        if path.stat().st_size > PUT_PART_BYTES:
            self._put_file_parts(bucket, key, path, content_type)
            return
        sse, meta = self._write_sse(bucket, key)
        try:
            self.client.fput_object(bucket, key, str(path), content_type=content_type, sse=sse, metadata=meta)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc, f"put {bucket}/{key}") from exc

    def _put_file_parts(self, bucket: str, key: str, path: Path, content_type: str) -> None:
        """A large file (a proxy) as a multipart upload of UNSIGNED-PAYLOAD parts, two in flight.

        minio's fput_object SHA-256-hashes every part to sign it over plain HTTP: for a 616 MB
        proxy that was a third of the transcode worker's time (bench/profile_ready.py). Integrity
        rests on our own digest of the file (computed by the caller) and the audit's re-reads.
        Memory: at most PUT_PARALLEL + 1 parts."""
        upload_id = self.start_multipart(bucket, key, content_type)
        try:
            parts: list[tuple[int, str]] = []
            with ThreadPoolExecutor(PUT_PARALLEL, thread_name_prefix="put-part") as pool:
                pending: list[tuple[int, Future[str]]] = []
                with path.open("rb") as fh:
                    number = 0
                    while data := fh.read(PUT_PART_BYTES):
                        number += 1
                        pending.append(
                            (number, pool.submit(self.upload_part, bucket, key, upload_id, number, data))
                        )
                        del data
                        running = [f for _n, f in pending if not f.done()]
                        if len(running) >= PUT_PARALLEL:
                            finished, _running = wait(running, return_when=FIRST_COMPLETED)
                            for f in finished:
                                f.result()  # a refused part stops the upload now, not at the end
                parts = [(n, f.result()) for n, f in pending]
            self.complete_multipart(bucket, key, upload_id, parts)
        except BaseException:
            with suppress(StorageError, ObjectMissing):
                self.abort_multipart(bucket, key, upload_id)
            raise

    def stat(self, bucket: str, key: str) -> ObjectInfo:
        try:
            st = self._stat_object(bucket, key)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc, f"stat {bucket}/{key}") from exc
        return ObjectInfo(bucket, key, int(st.size or 0), st.content_type, (st.etag or "").strip('"'))

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.stat(bucket, key)
        except ObjectMissing:
            return False
        return True

    def read_bytes(self, bucket: str, key: str) -> bytes:
        with self.open_stream(bucket, key) as chunks:
            return b"".join(chunks)

    def delete(self, bucket: str, key: str) -> None:
        """Delete every version of ``key``. In a versioned bucket (originals: Object Lock needs
        versioning) a plain delete only adds a delete marker and keeps the bytes forever."""
        try:
            versions = [
                o.version_id
                for o in self.client.list_objects(bucket, prefix=key, include_version=True)
                if o.object_name == key
            ]
            # No versions: nothing is there. (A plain delete would *add* a delete marker.)
            for version_id in versions:
                self.client.remove_object(bucket, key, version_id=version_id)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc, f"delete {bucket}/{key}") from exc

    def versions(self, bucket: str, key: str) -> list[str | None]:
        """The version ids stored under ``key`` (delete markers included)."""
        try:
            return [
                o.version_id
                for o in self.client.list_objects(bucket, prefix=key, include_version=True)
                if o.object_name == key
            ]
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc, f"list versions of {bucket}/{key}") from exc

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """The names of the current objects under ``prefix``, in S3's (lexical) order."""
        try:
            return [
                o.object_name
                for o in self.client.list_objects(bucket, prefix=prefix, recursive=True)
                if o.object_name is not None
            ]
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc, f"list {bucket}/{prefix}") from exc

    def presigned_get(self, bucket: str, key: str, expires: timedelta) -> str:
        """A URL a local HTTP client (ffmpeg) can GET, with Range, until ``expires``.

        Encrypted store: a loopback URL served by this process (archive.object_proxy), which reads
        the object with its SSE-C key; the key never reaches the client, its command line or logs.
        The URL works only on this machine and only while this process runs."""
        if self.keys is None:
            return self.client.presigned_get_object(bucket, key, expires=expires)
        from archive.object_proxy import ObjectProxy

        with self._key_ids_lock:
            if self._proxy is None or self._proxy_pid != os.getpid():  # none yet, or forked since
                self._proxy = ObjectProxy(self)
                self._proxy_pid = os.getpid()
            proxy = self._proxy
        return proxy.grant(bucket, key, expires)

    # Object Lock (originals bucket). COMPLIANCE mode: nobody, not even the S3 root account, can
    # shorten the date or delete the version before it - the property a court relies on.
    def lock_state(self, bucket: str, key: str) -> LockState:
        # Read from the object's headers: minio-py's get_object_retention cannot parse RGW's
        # 9-digit fractional seconds (see docs/operations.md).
        try:
            st = self._stat_object(bucket, key)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc, f"stat {bucket}/{key}") from exc
        headers = {k.lower(): v for k, v in (st.metadata or {}).items()}
        until = headers.get("x-amz-object-lock-retain-until-date")
        return LockState(
            retain_until=_parse_s3_time(until) if until else None,
            legal_hold=headers.get("x-amz-object-lock-legal-hold", "").upper() == "ON",
        )

    def extend_retention(self, bucket: str, key: str, until: datetime) -> datetime:
        """Set the object's COMPLIANCE retain-until date to ``until`` unless it is already later.
        Returns the date in force."""
        current = self.lock_state(bucket, key).retain_until
        if current is not None and current >= until:
            return current
        try:
            self.client.set_object_retention(bucket, key, Retention(COMPLIANCE, until))
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc, f"set retention on {bucket}/{key}") from exc
        return until

    def set_legal_hold(self, bucket: str, key: str, on: bool) -> None:
        try:
            if on:
                self.client.enable_object_legal_hold(bucket, key)
            else:
                self.client.disable_object_legal_hold(bucket, key)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc, f"legal hold on {bucket}/{key}") from exc

    @contextmanager
    def open_stream(
        self, bucket: str, key: str, offset: int = 0, length: int | None = None
    ) -> Iterator[Iterator[bytes]]:
        try:

            def get(ssec: SseCustomerKey | None) -> Any:
                return self.client.get_object(bucket, key, offset=offset, length=length or 0, ssec=ssec)

            resp = self._with_read_key(bucket, key, get)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc, f"get {bucket}/{key}") from exc
        try:
            yield resp.stream(READ_CHUNK)
        except urllib3.exceptions.HTTPError as exc:
            raise StorageError(f"reading {bucket}/{key}: {exc}") from exc
        finally:
            resp.close()
            resp.release_conn()

    # Multipart: minio-py exposes these S3 calls only as underscore methods; they have been
    # stable across 7.x and are what its own put_object uses. Wrapped here, in one place.
    def start_multipart(self, bucket: str, key: str, content_type: str) -> str:
        sse, meta = self._write_sse(bucket, key)
        headers: dict[str, str | list[str] | tuple[str]] = {"Content-Type": content_type}
        if sse is not None:
            headers.update(sse.headers())
            headers.update({f"x-amz-meta-{k}": v for k, v in meta.items()})
        try:
            upload_id: str = self.client._create_multipart_upload(bucket, key, headers)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc, f"start multipart {bucket}/{key}") from exc
        return upload_id

    def upload_part(self, bucket: str, key: str, upload_id: str, number: int, data: bytes) -> str:
        """UploadPart through a URL the minio client presigns with UNSIGNED-PAYLOAD.

        minio's own UploadPart over plain HTTP SHA-256-hashes every part to sign it, which was 40%
        of the API's CPU per uploaded byte, and the S3 server hashes it again to check. Integrity
        does not rest on that: every original is re-read from S3 and its SHA-256 compared with the
        dock's before it counts as archived (archive.ingest.pipeline.verify).
        """
        what = f"upload part {number} of {bucket}/{key}"
        try:
            url = self.client.get_presigned_url(
                "PUT",
                bucket,
                key,
                expires=timedelta(minutes=15),
                extra_query_params={"partNumber": str(number), "uploadId": upload_id},
            )
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc, what) from exc
        # Every part carries the SSE-C key the upload was started with (headers, outside the URL's
        # signature). That is the current master key unless a rotation or another process came in
        # between: S3 refuses a part under another key, so the next key is tried.
        candidates: list[str | None] = [None]
        if self.keys is not None:
            with self._key_ids_lock:
                first = self._key_ids.get((bucket, key)) or self.keys.current
            candidates = [first, *(k for k in self.keys.ids_to_try() if k != first)]
        for i, key_id in enumerate(candidates):
            headers = {"Content-Length": str(len(data))}
            if self.keys is not None and key_id is not None:
                headers.update(self.keys.sse(key_id, bucket, key).headers())
            try:
                r = self.http.request("PUT", url, body=data, headers=headers, preload_content=True)
            except urllib3.exceptions.HTTPError as exc:
                raise _translate(exc, what) from exc
            if r.status == 200:
                etag = r.headers.get("ETag", "").strip('"')
                if not etag:
                    raise StorageError(f"{what}: no ETag in the answer")
                if key_id is not None:
                    self._remember(bucket, key, key_id)
                return etag
            try:
                err = S3Error.fromxml(r)
            except (ElementTree.ParseError, UnicodeDecodeError):
                raise StorageError(f"{what}: HTTP {r.status}") from None
            if not (_wrong_key(err) and i + 1 < len(candidates)):
                raise _translate(err, what)
        raise StorageError(f"{what}: no storage key fits this upload")  # unreachable: loop raises

    def complete_multipart(self, bucket: str, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        mparts: list[Any] = [Part(n, etag) for n, etag in parts]
        try:
            self.client._complete_multipart_upload(bucket, key, upload_id, mparts)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc, f"complete multipart {bucket}/{key}") from exc

    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        try:
            self.client._abort_multipart_upload(bucket, key, upload_id)
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc, f"abort multipart {bucket}/{key}") from exc

    def presign_upload_part(
        self, bucket: str, key: str, upload_id: str, number: int, expires: timedelta
    ) -> str:
        """A URL for one UploadPart (this part number of this multipart upload, nothing else),
        signed for the endpoint the docks reach, valid for ``expires``."""
        return self.public_client.get_presigned_url(
            "PUT",
            bucket,
            key,
            expires=expires,
            extra_query_params={"partNumber": str(number), "uploadId": upload_id},
        )

    def upload_part_headers(self, bucket: str, key: str) -> dict[str, str]:
        """The headers every PUT of a part of ``key``'s multipart upload must carry beside its
        presigned URL: the SSE-C key of that one object (derived from the master key the upload was
        started with; none when encryption at rest is off). Whoever gets them can read and write that
        object only, and is the one sending its plaintext anyway (the dock)."""
        if self.keys is None:
            return {}
        self._refresh_keys()
        with self._key_ids_lock:
            key_id = self._key_ids.get((bucket, key)) or self.keys.current
        return {k: str(v) for k, v in self.keys.sse(key_id, bucket, key).headers().items()}

    def list_parts(
        self, bucket: str, key: str, upload_id: str, first: int = 1, last: int | None = None
    ) -> list[PartInfo]:
        """The parts S3 holds for an open multipart upload, numbers ``first``..``last``."""
        out: list[PartInfo] = []
        marker = first - 1
        try:
            while True:
                want = 1000 if last is None else min(1000, last - marker)
                if want <= 0:
                    break
                res = self.client._list_parts(
                    bucket, key, upload_id, max_parts=want, part_number_marker=str(marker)
                )
                out.extend(
                    PartInfo(part.part_number, part.etag, int(part.size or 0))
                    for part in res.parts
                    if last is None or part.part_number <= last
                )
                if not res.is_truncated or not res.parts:
                    break
                marker = res.parts[-1].part_number
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc, f"list parts of {bucket}/{key}") from exc
        return out

    def list_multipart_uploads(self, bucket: str, prefix: str) -> list[PendingMultipart]:
        out: list[PendingMultipart] = []
        key_marker: str | None = None
        upload_marker: str | None = None
        try:
            while True:
                res = self.client._list_multipart_uploads(
                    bucket, prefix=prefix, key_marker=key_marker, upload_id_marker=upload_marker
                )
                for u in res.uploads:
                    out.append(PendingMultipart(u.object_name, u.upload_id or "", u.initiated_time))
                if not res.is_truncated or not res.uploads:
                    break
                # minio 7.2 stores NextUploadIdMarker under a wrong attribute name: page by the last row.
                key_marker, upload_marker = res.uploads[-1].object_name, res.uploads[-1].upload_id
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc, f"list multipart uploads in {bucket}") from exc
        return out

    def list_keys_modified(self, bucket: str, prefix: str) -> list[tuple[str, datetime]]:
        """Current objects under ``prefix``: key and last-modified time."""
        try:
            return [
                (o.object_name or "", o.last_modified or datetime.now(UTC))
                for o in self.client.list_objects(bucket, prefix=prefix, recursive=True)
                if not o.is_delete_marker
            ]
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise _translate(exc, f"list {bucket}/{prefix}") from exc

    def presigned_get_public(
        self, bucket: str, key: str, expires: timedelta, content_type: str, filename: str
    ) -> str:
        """A GET URL for one object, signed for the public endpoint (browsers), with the response's
        Content-Type and Content-Disposition fixed by the signature."""
        return self.public_client.presigned_get_object(
            bucket,
            key,
            expires=expires,
            response_headers={
                "response-content-type": content_type,
                "response-content-disposition": f'inline; filename="{filename}"',
                "response-cache-control": "private, no-store",
            },
        )
