"""A small but real OpenID Connect provider for the tests, built on Authlib's server components
(authorization code grant, PKCE, the OpenID Connect code extension) under Flask, run as its own
process: ``python -m tests.oidc_provider --port P --client-id ID --client-secret S --redirect-uri URI
--user name:password ...``.

It signs ID tokens with its own RSA key (published at /jwks), logs users in with a password form,
and has one test hook, ``POST /_test/mode`` (``{"mode": ...}``), that makes its next ID tokens
misbehave the way a broken or hostile provider would: ``wrong-nonce``, ``wrong-audience``,
``wrong-issuer``, ``foreign-key`` (signed with a key not in its JWKS), ``expired``, ``no-username``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, Response, jsonify, request
from joserfc.jwk import RSAKey

KEY = RSAKey.generate_key(2048, parameters={"kid": "provider-1", "use": "sig", "alg": "RS256"})
FOREIGN_KEY = RSAKey.generate_key(2048, parameters={"kid": "provider-1", "use": "sig", "alg": "RS256"})
STATE: dict[str, Any] = {"mode": ""}


@dataclass
class User:
    name: str
    password: str
    sub: str = field(default_factory=lambda: secrets.token_hex(8))


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uri: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope.split() if s in {"openid", "profile"})

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: User
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return "not-the-nonce-of-this-sign-in" if STATE["mode"] == "wrong-nonce" else self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str:
        return "mfa"

    def get_amr(self) -> list[str]:
        return ["pwd", "otp"]


def build(issuer: str, client: Client, users: dict[str, User]) -> Flask:
    app = Flask(__name__)
    codes: dict[str, Code] = {}

    class CodeGrant(grants.AuthorizationCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]  # noqa: RUF012

        def save_authorization_code(self, code: str, req: Any) -> None:
            data = req.payload.data
            codes[code] = Code(
                code,
                req.client.client_id,
                req.payload.redirect_uri,
                req.payload.scope,
                req.user,
                data.get("nonce"),
                data.get("code_challenge"),
                data.get("code_challenge_method"),
            )

        def query_authorization_code(self, code: str, client: Client) -> Code | None:
            found = codes.get(code)
            return found if found and found.client_id == client.client_id else None

        def delete_authorization_code(self, authorization_code: Code) -> None:
            codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code: Code) -> User:
            return authorization_code.user

    class IdTokens(OpenIDCode):
        def exists_nonce(self, nonce: str, req: Any) -> bool:
            return False

        def resolve_client_private_key(self, client: Client) -> RSAKey:
            return FOREIGN_KEY if STATE["mode"] == "foreign-key" else KEY

        def get_client_algorithm(self, client: Client) -> str:
            return "RS256"

        def get_encode_header(self, client: Client) -> dict[str, str]:
            return {"alg": "RS256", "kid": "provider-1"}

        def get_client_claims(self, client: Client) -> dict[str, Any]:
            mode = STATE["mode"]
            now = int(time.time())
            claims: dict[str, Any] = {
                "iss": "http://evil.example" if mode == "wrong-issuer" else issuer,
                "aud": ["someone-else"] if mode == "wrong-audience" else [client.client_id],
                "iat": now - 7200 if mode == "expired" else now,
                "exp": now - 3600 if mode == "expired" else now + 300,
            }
            return claims

        def generate_user_info(self, user: User, scope: str) -> dict[str, Any]:
            info: dict[str, Any] = {"sub": user.sub, "name": user.name}
            if STATE["mode"] != "no-username":
                info["preferred_username"] = user.name
            return info

    server = AuthorizationServer(
        app,
        query_client=lambda client_id: client if client_id == client.client_id else None,
        save_token=lambda token, req: None,
    )
    server.register_grant(CodeGrant, [CodeChallenge(required=True), IdTokens(require_nonce=True)])

    @app.get("/.well-known/openid-configuration")
    def discovery() -> Response:
        return jsonify(
            {
                "issuer": issuer,
                "authorization_endpoint": issuer + "/authorize",
                "token_endpoint": issuer + "/token",
                "jwks_uri": issuer + "/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }
        )

    @app.get("/jwks")
    def jwks() -> Response:
        return jsonify({"keys": [KEY.as_dict(private=False)]})

    @app.route("/authorize", methods=["GET", "POST"])
    def authorize() -> Any:
        if request.method == "GET":
            # The login form: a real provider would also ask for a second factor here.
            return (
                "<form method='post'><input name='username'><input name='password' type='password'>"
                "<button>Sign in</button></form>"
            )
        user = users.get(request.form.get("username", ""))
        if user is None or not secrets.compare_digest(user.password, request.form.get("password", "")):
            return Response("wrong user name or password", status=401)
        return server.create_authorization_response(grant_user=user)

    @app.post("/token")
    def token() -> Any:
        return server.create_token_response()

    @app.post("/_test/mode")
    def mode() -> Response:
        STATE["mode"] = (request.get_json(silent=True) or {}).get("mode", "")
        return jsonify(STATE)

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--redirect-uri", required=True)
    parser.add_argument("--user", action="append", default=[], help="name:password")
    args = parser.parse_args()
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # plain http on loopback, for the tests only
    issuer = f"http://127.0.0.1:{args.port}"
    users = {n: User(n, p) for n, _sep, p in (u.partition(":") for u in args.user)}
    app = build(issuer, Client(args.client_id, args.client_secret, args.redirect_uri), users)
    app.run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
