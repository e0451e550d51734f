"""Every error leaves the API as {"error": {"code", "message"}} with the right status, never a traceback."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from messaging_whatsapp import errors
from messaging_whatsapp.http_errors import error_response, status_for

logger = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for problem in exc.errors()[:5]:
        location = ".".join(str(part) for part in problem.get("loc", ()) if part != "body")
        parts.append(f"{location or 'body'}: {problem.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors, validation errors, HTTP errors and surprises to JSON errors."""

    @app.exception_handler(errors.EngineError)
    async def _engine_error(_request: Request, exc: errors.EngineError) -> JSONResponse:
        headers = None
        if isinstance(exc, errors.RateLimited):
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
        return error_response(status_for(exc), exc.code, exc.message, headers, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "validation_error", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The route's template, never the path: a webhook's path carries its instance's secret.
        route = getattr(request.scope.get("route"), "path", "an unknown route")
        logger.exception("unhandled error on %s %s", request.method, route)
        return error_response(500, "internal_error", "the server could not complete the request")
