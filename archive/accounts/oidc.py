"""Single sign-on for the pages: an OpenID Connect relying party (authorization code flow, PKCE S256).

The agency's identity provider does the login (its own multi-factor rules); the archive only trusts
an ID token that
- answers a sign-in this browser began here: ``state`` is one-use, kept in Redis for ten minutes,
  and bound to an HttpOnly cookie set on this browser when the sign-in began (login CSRF);
- came back over the provider's token endpoint in exchange for the code and the PKCE verifier;
- is signed by one of the provider's keys (its JWKS, fetched from the discovery document; a token
  signed with an unknown key makes us fetch the set once more), with an algorithm of
  ``Settings.oidc_algorithms`` (never ``none`` nor a shared-secret HMAC);
- names the configured issuer, our client id in ``aud`` (and in ``azp`` when there are several
  audiences), the ``nonce`` of this sign-in, and is within its ``iat``/``exp`` (60 s leeway).

JOSE is done by joserfc (the JOSE library of the Authlib project); HTTP by httpx.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import redis
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from archive.accounts.errors import SignInFailed, SsoOff
from archive.config import Settings
from archive.i18n import _

log = logging.getLogger("custody.accounts.oidc")
PENDING_TTL_S = 600
LEEWAY_S = 60
_PENDING = "custody:oidc:pending:"


@dataclass(frozen=True)
class Pending:
    """A sign-in begun here: what the callback must find again."""

    nonce: str
    verifier: str
    next_path: str
    browser: str  # SHA-256 of the browser-binding cookie
    redirect_uri: str


@dataclass(frozen=True)
class Identity:
    username: str
    claims: dict[str, Any]

    def summary(self) -> dict[str, str]:
        """What the custody log keeps of the provider's answer."""
        return {
            "issuer": str(self.claims.get("iss", ""))[:200],
            "subject": str(self.claims.get("sub", ""))[:200],
            "acr": str(self.claims.get("acr", ""))[:100],
            "amr": ",".join(str(a) for a in self.claims.get("amr", []) or [])[:100],
        }


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def safe_next(value: str | None) -> str:
    """Only a path on this server (``/cases/...``): never another site (an open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(c in value for c in "\r\n\t#") or len(value) > 500:
        return "/"
    return value


class Provider:
    """The configured provider's endpoints and keys, fetched once per process (an hour at most)."""

    def __init__(self, settings: Settings, http: httpx.Client | None = None) -> None:
        if not settings.oidc_issuer:
            raise SsoOff(_("single sign-on is not configured (CUSTODY_OIDC_ISSUER)"))
        self.s = settings
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.http = http or httpx.Client(timeout=10.0, follow_redirects=False)
        self._lock = threading.Lock()
        self._meta: dict[str, Any] | None = None
        self._meta_at = 0.0
        self._keys: KeySet | None = None

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            resp = self.http.get(url, headers={"Accept": "application/json"})
            resp.raise_for_status()
            body = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("identity provider unreachable at %s: %s", url, exc)
            raise SignInFailed(
                _("the identity provider did not answer; try again later"), code="auth.sso_provider"
            ) from exc
        if not isinstance(body, dict):
            raise SignInFailed(_("the identity provider answered nonsense"), code="auth.sso_provider")
        return body

    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._meta is None or time.monotonic() - self._meta_at > 3600:
                meta = self._get_json(self.issuer + "/.well-known/openid-configuration")
                if str(meta.get("issuer", "")).rstrip("/") != self.issuer:
                    raise SignInFailed(
                        _("the identity provider names another issuer than the one configured"),
                        code="auth.sso_provider",
                    )
                self._meta, self._meta_at, self._keys = meta, time.monotonic(), None
            return self._meta

    def keys(self, refresh: bool = False) -> KeySet:
        meta = self.metadata()
        with self._lock:
            if self._keys is None or refresh:
                self._keys = KeySet.import_key_set(self._get_json(str(meta["jwks_uri"])))  # type: ignore[arg-type]
            return self._keys

    # -- the two legs of the flow ---------------------------------------------------------------

    def begin(self, r: redis.Redis, redirect_uri: str, next_path: str) -> tuple[str, str]:
        """The provider's authorization URL to send the browser to, and the browser-binding cookie's
        value to set on it."""
        meta = self.metadata()
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier, browser = secrets.token_urlsafe(48), secrets.token_urlsafe(32)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        pending = Pending(nonce, verifier, safe_next(next_path), _sha(browser), redirect_uri)
        r.setex(_PENDING + _sha(state), PENDING_TTL_S, json.dumps(pending.__dict__))
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.s.oidc_client_id,
                "redirect_uri": redirect_uri,
                "scope": self.s.oidc_scopes,
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{meta['authorization_endpoint']}?{query}", browser

    @staticmethod
    def take_pending(r: redis.Redis, state: str | None, browser: str | None) -> Pending:
        """The sign-in ``state`` names, once; it must have begun in this browser."""
        if not state or len(state) > 200:
            raise SignInFailed(_("the sign-in answer carries no state"), code="auth.sso_state")
        raw = r.getdel(_PENDING + _sha(state))
        if raw is None:
            raise SignInFailed(
                _("unknown, used or expired sign-in state: start the sign-in again"), code="auth.sso_state"
            )
        pending = Pending(**json.loads(raw))
        if not browser or not secrets.compare_digest(_sha(browser), pending.browser):
            raise SignInFailed(
                _("this sign-in was begun in another browser: start the sign-in again"),
                code="auth.sso_state",
            )
        return pending

    def finish(self, pending: Pending, code: str | None) -> Identity:
        """Exchange the code, verify the ID token, return who the provider says signed in."""
        if not code or len(code) > 2000:
            raise SignInFailed(_("the sign-in answer carries no code"), code="auth.sso_code")
        meta = self.metadata()
        try:
            resp = self.http.post(
                str(meta["token_endpoint"]),
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": pending.redirect_uri,
                    "code_verifier": pending.verifier,
                },
                auth=(self.s.oidc_client_id, self.s.oidc_client_secret.get_secret_value()),
                headers={"Accept": "application/json"},
            )
            body = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInFailed(
                _("the identity provider did not answer; try again later"), code="auth.sso_provider"
            ) from exc
        if resp.status_code != 200 or not isinstance(body, dict) or not body.get("id_token"):
            error = str(body.get("error", resp.status_code) if isinstance(body, dict) else resp.status_code)
            raise SignInFailed(
                _("the identity provider refused the code ({error})").format(error=error[:80]),
                code="auth.sso_code",
            )
        claims = self.verify_id_token(str(body["id_token"]), pending.nonce)
        username = claims.get(self.s.oidc_username_claim)
        if not isinstance(username, str) or not username:
            raise SignInFailed(
                _("the ID token has no {claim} claim").format(claim=self.s.oidc_username_claim),
                code="auth.sso_claim",
            )
        return Identity(username, claims)

    def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        algorithms = [a.strip() for a in self.s.oidc_algorithms.split(",") if a.strip()]
        try:
            try:
                token = jwt.decode(id_token, self.keys(), algorithms=algorithms)
            except JoseError:
                token = jwt.decode(id_token, self.keys(refresh=True), algorithms=algorithms)  # a new key
        except (JoseError, ValueError) as exc:
            raise SignInFailed(
                _("the ID token's signature does not verify ({error})").format(error=type(exc).__name__),
                code="auth.sso_signature",
            ) from exc
        claims = dict(token.claims)
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else list(aud or [])
        now = time.time()
        problems = []
        if str(claims.get("iss", "")).rstrip("/") != self.issuer:
            problems.append(("auth.sso_issuer", _("the ID token names another issuer")))
        if self.s.oidc_client_id not in audiences:
            problems.append(("auth.sso_audience", _("the ID token is not meant for this archive (aud)")))
        elif len(audiences) > 1 and claims.get("azp") != self.s.oidc_client_id:
            problems.append(("auth.sso_audience", _("the ID token is not meant for this archive (azp)")))
        if not isinstance(nonce, str) or not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            problems.append(("auth.sso_nonce", _("the ID token's nonce is not this sign-in's")))
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int | float) or exp + LEEWAY_S < now:
            problems.append(("auth.sso_expired", _("the ID token has expired")))
        if not isinstance(iat, int | float) or iat - LEEWAY_S > now:
            problems.append(("auth.sso_expired", _("the ID token was issued in the future")))
        if problems:
            code, message = problems[0]
            raise SignInFailed(message, code=code)
        return claims


_providers: dict[tuple[str, str], Provider] = {}
_providers_lock = threading.Lock()


def provider(settings: Settings) -> Provider:
    """One provider client per issuer and client id per process (its metadata and keys cached)."""
    key = (settings.oidc_issuer, settings.oidc_client_id)
    with _providers_lock:
        found = _providers.get(key)
        if found is None or found.s is not settings:
            found = _providers[key] = Provider(settings)
        return found
