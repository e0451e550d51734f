"""The OpenAPI document as clients need it: every error answer with its schema, and how to log in.

FastAPI documents a route's success and a 422 of its own shape. Our errors all have one shape
(http_errors.error_response) and any route may answer some of them; a generated client that knows
only 2xx treats a 404 or a 429 as a protocol error. Each operation therefore lists the errors it
can answer, with the shared schema; and two security schemes, either of which opens every /api/
route but login: a user's token from /api/v1/auth/login, or an API key, both sent as a bearer.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "What went wrong, for programs (not_found...)."},
                "message": {"type": "string", "description": "What went wrong, for people."},
            },
            "additionalProperties": True,
        }
    },
}
# What any API route may answer besides its success.
ERRORS = {
    "400": "The request cannot be read.",
    "401": "No valid token or API key, or the session has ended.",
    "403": "The caller's role may not do this.",
    "404": "Nothing of the caller's tenant has this id.",
    "405": "The method is not allowed here.",
    "409": "The request clashes with the current state.",
    "413": "The body is too large.",
    "415": "The content type is not one this route reads.",
    "422": "A value is missing or not acceptable.",
    "429": "Too many requests; see Retry-After.",
    "503": "A backend (the database, the streams) is unavailable; retry later.",
}
PUBLIC_OPERATIONS = {("/api/v1/auth/login", "post")}
SECURITY_SCHEMES = {
    "userToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A user's token from POST /api/v1/auth/login; it carries the user's role.",
    },
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "mwk_...",
        "description": "An API key (POST /api/v1/api-keys), with its role and scopes, as a bearer.",
    },
}


def documented_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with error answers and security schemes (built once)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            _document_errors(operation)
            if path.startswith("/api/") and (path, method) not in PUBLIC_OPERATIONS:
                operation["security"] = [{"userToken": []}, {"apiKey": []}]
    app.openapi_schema = schema
    return schema


def _document_errors(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for status, description in ERRORS.items():
        # FastAPI's own 422 describes its validation detail; ours answers in the shared shape.
        responses[status] = {"description": description, "content": error}
