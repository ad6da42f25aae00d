"""The OpenAPI document (api/openapi.py) says what the API really answers: one error schema, the error
statuses each route can answer, media types of byte answers, tus headers, security. Read without the
services; tests/api/test_schema_fuzz.py holds the running application to it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from api.app import create_app
from api.openapi import ERROR_SCHEMA


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return create_app().openapi()


def _ops(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, ops in doc["paths"].items() for m, op in ops.items()]


def test_one_error_schema_and_no_framework_422(doc: dict[str, Any]) -> None:
    text = json.dumps(doc)
    assert "HTTPValidationError" not in text and "ValidationError" not in doc["components"]["schemas"]
    error = doc["components"]["schemas"][ERROR_SCHEMA]
    assert set(error["required"]) == {"detail", "code"} and error["properties"]["code"]["type"] == "string"
    for method, path, op in _ops(doc):
        for status, answer in op["responses"].items():
            if method == "HEAD":
                assert "content" not in answer, (path, status)  # headers only
            elif (
                status.isdigit()
                and int(status) >= 400
                and (method, path, status) != ("GET", "/healthz", "503")
            ):
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}, (method, path, status)


def test_error_statuses_follow_from_each_route(doc: dict[str, Any]) -> None:
    ops = {(m, p): op for m, p, op in _ops(doc)}

    def statuses(method: str, path: str) -> set[str]:
        return set(ops[(method, path)]["responses"])

    # Authenticated, names a thing, takes a body, writes.
    assert {"400", "401", "403", "404", "409", "413", "422"} <= statuses(
        "POST", "/api/v1/cases/{case_id}/records"
    )
    # Public, no input at all: nothing but success (and the public face's own 304/429).
    assert statuses("GET", "/public/api/roster") == {"200", "304", "429"}
    assert statuses("GET", "/api/v1/keys") == {"200"}
    # Reads do not conflict; a route without a body has no 413.
    assert not {"409", "413"} & statuses("GET", "/api/v1/cases/{case_id}")
    assert ops[("GET", "/api/v1/cases/{case_id}")]["security"] == [{"bearer": []}]
    # The review page's players stream with the cookie too.
    assert {"viewCookie": []} in ops[("GET", "/api/v1/media/{media_id}/proxy")]["security"]
    assert "WWW-Authenticate" in ops[("GET", "/api/v1/me")]["responses"]["401"]["headers"]


def test_tus_routes_document_their_headers(doc: dict[str, Any]) -> None:
    uploads = doc["paths"]["/api/v1/uploads"]
    one = doc["paths"]["/api/v1/uploads/{upload_id}"]
    assert {"Tus-Version", "Tus-Extension", "Tus-Max-Size", "Tus-Checksum-Algorithm"} <= set(
        uploads["options"]["responses"]["204"]["headers"]
    )
    create = uploads["post"]
    assert {p["name"].lower() for p in create["parameters"]} >= {
        "tus-resumable",
        "upload-length",
        "upload-metadata",
    }
    assert {"Location", "Upload-Offset", "Tus-Resumable"} <= set(create["responses"]["201"]["headers"])
    assert {"412", "413"} <= set(create["responses"]) and "content" not in create["responses"]["201"]
    patch = one["patch"]
    assert {p["name"] for p in patch["parameters"] if p["in"] == "header"} >= {
        "Tus-Resumable",
        "Upload-Offset",
        "Upload-Checksum",
        "Custody-Sha256",
    }
    assert list(patch["requestBody"]["content"]) == ["application/offset+octet-stream"]
    assert {"412", "415", "423", "460"} <= set(patch["responses"])
    assert "Retry-After" in patch["responses"]["423"]["headers"]
    assert {"Upload-Offset", "Upload-Length", "Upload-Metadata"} <= set(
        one["head"]["responses"]["200"]["headers"]
    )


def test_byte_answers_name_their_media_types(doc: dict[str, Any]) -> None:
    paths = doc["paths"]

    def types(path: str, method: str = "get", status: str = "200") -> set[str]:
        return set(paths[path][method]["responses"][status]["content"])

    assert types("/api/v1/media/{media_id}/proxy") == {"video/mp4", "audio/mp4", "image/jpeg"}
    assert types("/api/v1/media/{media_id}/poster") == {"image/jpeg"}
    assert types("/api/v1/media/{media_id}/original") == {"*/*"}
    assert "Content-Range" in paths["/api/v1/media/{media_id}/poster"]["get"]["responses"]["206"]["headers"]
    assert "416" in paths["/api/v1/media/{media_id}/original"]["get"]["responses"]
    assert types("/api/v1/exports", "post") == {"application/zip"}
    assert types("/public/decisions") == {"text/html"} and types("/cases/{case_id}") == {"text/html"}
    assert set(paths["/api/v1/publicity/roster/import"]["post"]["requestBody"]["content"]) == {"text/csv"}
    assert "purpose" in {p["name"] for p in paths["/api/v1/media/{media_id}"]["get"]["parameters"]}
