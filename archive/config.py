"""Settings: one pydantic-settings class, read from ``CUSTODY_*`` environment variables.

Built lazily by :func:`get_settings` so that importing a module never reads the environment
or opens a connection; processes create their clients after they fork.

There are no default secrets. ``deploy/services.sh`` generates the S3 keys and the Redis password
on first set-up and exports them; a Settings with an empty, published or weak secret is refused
(:class:`InsecureSettings`) unless the profile is embedded or test with every service on loopback.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The fixed keys earlier versions of deploy/services.sh gave the S3 server: published in this
# repository's history, so they count as no secret at all (as do the usual quick-start ones).
DEFAULT_S3_ACCESS_KEY = "CUSTODYACCESSKEY0001"
DEFAULT_S3_SECRET_KEY = "custodysecretkey000000000000000000000001"  # noqa: S105 - named to be refused
KNOWN_DEFAULT_SECRETS = frozenset(
    {
        DEFAULT_S3_ACCESS_KEY,
        DEFAULT_S3_SECRET_KEY,
        "minioadmin",
        "minio",
        "admin",
        "password",
        "secret",
        "changeme",
    }
)
MIN_SECRET_CHARS = 16


class InsecureSettings(ValueError):
    """The settings would run the archive with a default, empty or weak secret outside the
    embedded or test profile on loopback (a ValueError, so pydantic reports it as a validation
    error of Settings)."""


def _loopback(host: str | None) -> bool:
    if not host:
        return True  # a Unix socket or a local file (SQLite)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: another machine, as far as we can tell


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CUSTODY_", env_file=None, extra="ignore")

    # embedded: one machine, every service on loopback (the default, `make run`); test: the test
    # services, also on loopback; production: real secrets required. Outside embedded/test on
    # loopback, a default or empty secret is refused at start (see _refuse_default_secrets).
    profile: Literal["embedded", "test", "production"] = "embedded"
    # Where the embedded default keeps its state (SQLite file, signing keys, service data).
    data_dir: Path = Path("var")
    database_url: str = ""  # empty: SQLite at <data_dir>/custody.db
    redis_url: str = "redis://127.0.0.1:6380/0"

    s3_endpoint: str = "127.0.0.1:7480"  # host:port, as the minio client wants it
    # No defaults: deploy/services.sh generates them (var/secrets.env) and exports them.
    s3_access_key: str = ""
    s3_secret_key: SecretStr = SecretStr("")
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    bucket_originals: str = "custody-originals"
    bucket_derived: str = "custody-derived"
    # The S3 endpoint the docks reach (host:port), when it differs from the one the API and workers
    # use (a station network, a load balancer in front of the gateways). Empty: ``s3_endpoint``.
    # Presigned part URLs are signed for this host.
    s3_public_endpoint: str = ""
    s3_public_secure: bool | None = None  # None: as ``s3_secure``
    # Reviewers' browsers read proxies and posters straight from S3 on a presigned URL per access
    # (logged like any stream), valid this long, for one object.
    stream_url_ttl_s: int = Field(default=600, ge=30, le=3600)

    key_dir: Path | None = None  # empty: <data_dir>/keys
    # AES-256 key (base64) for parties' identity numbers; empty: <key folder>/party-id.key (0600).
    party_key: SecretStr | None = None

    # The agency's zone: legal deadlines (working days) are local calendar dates in it, and people
    # read and type times in it (archive.localtime). Validated below.
    timezone: str = "Asia/Shanghai"

    # Encryption at rest (SSE-C): every object is written encrypted with a key the S3 server never
    # stores. Keys: CUSTODY_STORAGE_KEYS (comma-separated base64 32-byte keys, the first is current:
    # production, from the agency's secret store) or, if empty, key files under <key_dir>/storage
    # (generated on first use, 0600). See archive/storage.py and docs/security.md.
    storage_encryption: bool = True
    storage_keys: SecretStr = SecretStr("")

    # Signing key backend: "file" (Ed25519 keys in <key_dir>, the embedded default) or "pkcs11"
    # (the private key stays in an HSM or token reached through a PKCS#11 module).
    signing_backend: Literal["file", "pkcs11"] = "file"
    pkcs11_module: str = ""  # path of the module, e.g. /usr/lib/softhsm/libsofthsm2.so
    pkcs11_token_label: str = ""
    pkcs11_pin: SecretStr = SecretStr("")

    api_host: str = "127.0.0.1"
    api_port: int = 8000

    # Upload limits. Metadata is small by nature; a huge header is an attack or a bug.
    max_upload_bytes: int = 64 * 1024**3
    max_metadata_bytes: int = 8 * 1024
    upload_part_bytes: int = 16 * 1024**2  # S3 multipart part size; bounds API memory per upload
    # Parts of one PATCH written to S3 while the next part is still arriving. API memory per
    # upload is about (2 + this) x upload_part_bytes.
    upload_parts_in_flight: int = Field(default=2, ge=1, le=8)
    # One PATCH at a time per upload. Short, renewed while bytes flow: after an API crash the
    # upload is writable again within this many seconds.
    upload_lock_ttl_s: int = 30
    # Direct uploads (the dock PUTs parts to S3 itself): lifetime of one presigned part URL, and how
    # many URLs one request may ask for.
    direct_part_url_ttl_s: int = Field(default=600, ge=60, le=3600)
    direct_max_urls_per_request: int = 32
    # An open upload untouched for this long is abandoned: the housekeeping task aborts its S3
    # multipart upload (whose parts otherwise occupy storage forever) and removes its tail object.
    upload_resume_window_s: float = 7 * 86400.0
    upload_sweep_interval_s: float = 3600.0

    # The ingest worker (verify, probe, sign, upload digests): I/O-bound (S3 reads, ffprobe runs in a
    # subprocess, hashing releases the GIL), so threads in one process by default: a prefork pool
    # costs a whole interpreter per slot, idle or not. Transcodes keep their own prefork process.
    ingest_worker_pool: str = Field(default="threads", pattern="^(threads|prefork|solo)$")
    ingest_worker_concurrency: int = Field(default=2, ge=1, le=16)

    # Verification re-reads each original from S3; its hash state is saved this often, so a worker
    # killed half way through a large file resumes from there.
    verify_checkpoint_bytes: int = 256 * 1024**2
    # Probe and derive start at completion, beside the verification read, and are recorded only once
    # verification has passed on the same object (docs/architecture.md, "Derive beside verify").
    # Off: the steps run strictly one after another, as before.
    derive_beside_verify: bool = True

    # Celery. The visibility timeout must exceed the longest task or Redis redelivers it mid-run.
    transcode_time_limit_s: int = 6 * 3600
    visibility_timeout_s: int = 7 * 3600
    ffmpeg_stall_s: int = 120  # kill ffmpeg if its progress does not move for this long
    reconcile_interval_s: float = 60.0
    reconcile_stale_after_s: float = 600.0

    proxy_height: int = 720
    poster_width: int = 640

    # Time each worker heartbeat stays valid in Redis (health check "worker alive").
    worker_heartbeat_ttl_s: int = 30
    # The beat leader's lease in Redis (workers/beat_leader.py): a standby beat takes over within this
    # long after the leader dies (at once when it stops cleanly).
    beat_lease_s: float = Field(default=30.0, ge=1.0, le=600.0)

    # Custody log (issue 5). Checkpoints are signed on this schedule when the log grew.
    checkpoint_interval_s: float = 300.0
    # Each checkpoint and log segment published to S3 is written under COMPLIANCE retention for this
    # many years (Object Lock: no version of it can be deleted or overwritten before then, by anyone).
    ledger_lock_years: int = Field(default=30, ge=1, le=100)
    # Fixity sweep: every archived original and derivative is re-hashed once per cycle, a slice
    # per run, at no more than the rate below (so the sweep never starves ingest or review of S3).
    fixity_cycle_s: float = 7 * 86400.0
    fixity_interval_s: float = 3600.0
    fixity_rate_bytes_per_s: float = 50e6

    # Retention: the sweep's schedule as a five-field crontab (minute hour day month weekday, UTC).
    retention_sweep_cron: str = "30 2 * * *"
    retention_sweep_batch: int = 200
    retention_classify_interval_s: float = 60.0

    # Cases (issue 3). A text record links media of its officers recorded within this many seconds
    # of its window, on the corrected clock.
    autolink_buffer_s: float = 300.0
    # Longest window (seconds) of a record that names officers (issue 10): a record spanning decades
    # would link every recording its officers ever made. Longer windows are refused (422).
    autolink_max_window_s: float = 86400.0
    # Longest record body accepted (characters); a whole transcript fits, a pasted disk image does not.
    record_body_max_chars: int = 200_000
    # Lifetime of the review page's HttpOnly cookie that lets <video> elements stream proxies.
    view_session_ttl_s: int = 3600

    # Accounts (issue 10, finding 5; docs/security.md "Accounts"). A bearer token stops working this many
    # days after it was issued (`custody users add` / `rotate`); 0: never.
    token_ttl_days: int = Field(default=90, ge=0, le=3650)
    # A page session (single sign-on) ends after this many seconds without a request, and in any case
    # this many seconds after sign-in.
    session_idle_s: int = Field(default=1800, ge=60, le=86400)
    session_max_s: int = Field(default=12 * 3600, ge=300, le=7 * 86400)
    # Failed authentication (bad, expired or ended credentials; refused sign-ins), counted in Redis over
    # a window that starts at the first failure: past the limit, that client address (or account)
    # gets 429 with Retry-After until the window ends, and the refusal is logged once per window.
    auth_fail_window_s: int = Field(default=300, ge=10, le=86400)
    auth_fail_max_per_addr: int = Field(default=20, ge=1, le=100000)
    auth_fail_max_per_account: int = Field(default=10, ge=1, le=100000)
    # Single sign-on for the pages: OpenID Connect (authorization code flow with PKCE). Empty issuer: off.
    # The claim named by oidc_username_claim must equal the name of an enabled Custody user.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr = SecretStr("")
    oidc_username_claim: str = "preferred_username"
    oidc_scopes: str = "openid profile"
    # Where the provider sends the browser back; empty: <this server>/auth/oidc/callback as requested.
    oidc_redirect_uri: str = ""
    # Signature algorithms accepted on ID tokens (never "none", never HMAC with a shared secret).
    oidc_algorithms: str = "RS256,ES256,PS256,EdDSA"

    # Enforcement publicity (issue 14, docs/publicity.md).
    publicity_authority: str = ""  # the agency's name on the public pages (执法机关)
    publicity_due_soon_days: int = Field(default=3, ge=0, le=20)  # working days
    # The external publicity platform: each publication and withdrawal is POSTed there, signed with
    # HMAC-SHA256 under the secret. Empty URL: nothing is pushed (and nothing queued).
    publicity_webhook_url: str = ""
    publicity_webhook_secret: SecretStr = SecretStr("")
    publicity_webhook_timeout_s: float = 10.0
    publicity_webhook_max_attempts: int = Field(default=10, ge=1, le=50)
    publicity_webhook_backoff_s: float = 30.0  # first retry; doubles each time, capped below
    publicity_webhook_backoff_max_s: float = 3600.0
    publicity_reconcile_interval_s: float = 120.0
    # The public face: per client address, a `limits` rate string, counted in Redis so that every
    # API process shares one count.
    public_rate_limit: str = "120/minute"
    # 0: caches keep public answers but revalidate each time (ETag, 304), so a withdrawal shows at once.
    public_cache_max_age_s: int = 0

    # Observability (issue 16): JSON log lines (request id and media id on each), and the token a
    # Prometheus scrape of /metrics must send (unset: loopback clients only).
    log_json: bool = False
    metrics_token: SecretStr | None = None

    # Whole-process recording (issue 13): recordings not linked to any case after this many days are
    # warned about; the oversight check runs on this crontab (UTC).
    unlinked_warning_days: int = Field(default=7, ge=1, le=3650)
    oversight_check_cron: str = "15 3 * * *"
    # A case export or an original's download through the API needs an approved copy-out request
    # (调取审批). Only a test harness that exercises other things switches this off.
    copyout_required: bool = True
    # Two-person approval (issue 10, finding 4): a request nobody approved or rejected within this
    # many seconds expires (it must be asked again).
    approval_ttl_s: float = Field(default=7 * 86400.0, gt=0)

    def on_loopback(self) -> bool:
        """Whether S3, Redis and the database are all on this machine's loopback interface."""
        s3_host = urlsplit(f"//{self.s3_endpoint}").hostname
        db = self.resolved_database_url()
        db_host = None if db.startswith("sqlite") else urlsplit(db).hostname
        return all(_loopback(h) for h in (s3_host, urlsplit(self.redis_url).hostname, db_host))

    def insecure_reasons(self) -> list[str]:
        """What would make this configuration unfit outside the embedded or test profile on loopback."""
        reasons = []
        for name, value, least in (
            ("CUSTODY_S3_ACCESS_KEY", self.s3_access_key, 8),
            ("CUSTODY_S3_SECRET_KEY", self.s3_secret_key.get_secret_value(), MIN_SECRET_CHARS),
        ):
            if _weak(value, least):
                reasons.append(f"{name} is empty, a published default or too short")
        if _weak(urlsplit(self.redis_url).password or "", MIN_SECRET_CHARS):
            reasons.append("CUSTODY_REDIS_URL carries no password (or a default or short one)")
        db = urlsplit(self.resolved_database_url())
        if (
            db.scheme != "sqlite"
            and not _loopback(db.hostname)
            and _weak(db.password or "", MIN_SECRET_CHARS)
        ):
            reasons.append("CUSTODY_DATABASE_URL names a remote server without a (strong) password")
        if not self.storage_encryption:
            reasons.append("CUSTODY_STORAGE_ENCRYPTION is off: evidence would be stored in clear")
        elif not self.s3_secure and not _loopback(urlsplit(f"//{self.s3_endpoint}").hostname):
            reasons.append(
                "CUSTODY_S3_SECURE is false for a remote S3 server: "
                "the SSE-C keys would cross the network in clear"
            )
        if self.oidc_issuer and not (
            self.oidc_issuer.startswith("https://") or _loopback(urlsplit(self.oidc_issuer).hostname)
        ):
            reasons.append(
                "CUSTODY_OIDC_ISSUER must be an https:// URL (sign-in answers would travel in clear)"
            )
        if self.signing_backend == "pkcs11" and _weak(self.pkcs11_pin.get_secret_value(), 4):
            reasons.append("CUSTODY_PKCS11_PIN is empty or a default")
        return reasons

    def refuse_insecure(self) -> None:
        """Raise InsecureSettings unless the secrets are fit for this profile: embedded or test with
        S3, Redis and the database on loopback may run on what services.sh printed (or nothing);
        production, or any service off this machine, needs real secrets."""
        if self.profile in ("embedded", "test") and self.on_loopback():
            return
        reasons = self.insecure_reasons()
        if reasons:
            raise InsecureSettings(
                f"refusing to start the {self.profile} profile"
                + ("" if self.profile == "production" else " with services off loopback")
                + ": "
                + "; ".join(reasons)
            )

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Self:
        self.refuse_insecure()
        return self

    # Language (issue 11): of pages, API errors and CLI output when neither the user's setting, the
    # request's Accept-Language nor the locale names one (zh-CN or en). ``timezone`` (above, an IANA
    # name from Debian's tzdata) is also the zone in which staff read and type times; storage stays UTC.
    language: str = "zh-CN"

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        from archive.i18n import validate

        return validate(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Shanghai)") from exc
        return value

    @model_validator(mode="after")
    def _webhook_needs_a_secret(self) -> Settings:
        # An unsigned push would let anyone who can reach the platform forge a publication.
        if self.publicity_webhook_url and len(self.publicity_webhook_secret.get_secret_value()) < 16:
            raise ValueError("CUSTODY_PUBLICITY_WEBHOOK_SECRET must have at least 16 characters")
        return self

    def public_s3_origin(self) -> str:
        """The origin (scheme://host:port) browsers and docks reach S3 at."""
        secure = self.s3_secure if self.s3_public_secure is None else self.s3_public_secure
        return f"{'https' if secure else 'http'}://{self.s3_public_endpoint or self.s3_endpoint}"

    def browsers_stream_from_storage(self) -> bool:
        """Whether reviewers' browsers can read proxies and posters on a presigned S3 URL
        (media ``?via=storage``). Not with encryption at rest: an SSE-C object is readable only with
        its key in request headers, which a <video> element cannot send (and the key must not reach
        the browser); the API streams them instead."""
        return not self.storage_encryption

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        if self.oidc_issuer and not self.oidc_client_id:
            raise ValueError("CUSTODY_OIDC_ISSUER is set but CUSTODY_OIDC_CLIENT_ID is empty")
        return self

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'custody.db').resolve()}"

    def resolved_key_dir(self) -> Path:
        return self.key_dir if self.key_dir is not None else self.data_dir / "keys"


def _weak(value: str, least: int) -> bool:
    return not value or value in KNOWN_DEFAULT_SECRETS or len(value) < least


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
