"""Domain exceptions, and their mapping to one JSON error shape for every status."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

logger = logging.getLogger(__name__)


class DomainError(Exception):
    """Base of the errors services raise; each maps to one HTTP status."""

    code = 400

    def __init__(self, message: str, errors: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors


class NotFound(DomainError):
    code = 404


class Conflict(DomainError):
    code = 409


class MalformedInput(DomainError):
    """The request body cannot be read at all (not JSON, broken JSON)."""

    code = 400


class PayloadTooLarge(DomainError):
    code = 413


class UnsupportedMediaType(DomainError):
    code = 415


class DomainValidationError(DomainError):
    """Input that is well-formed but breaks a domain invariant; ``errors`` is field-keyed."""

    code = 422


def error_body(code: int, message: str | None = None, errors: dict[str, Any] | None = None) -> dict[str, Any]:
    """The uniform error body: ``{code, status, message?, errors?}`` (flask-smorest's shape)."""
    body: dict[str, Any] = {"code": code, "status": HTTP_STATUS_CODES.get(code, "Unknown")}
    if message:
        body["message"] = message
    if errors:
        body["errors"] = errors
    return body


def _json_error(code: int, message: str | None, errors: dict[str, Any] | None = None) -> tuple[Response, int]:
    return jsonify(error_body(code, message, errors)), code


def handle_domain_error(exc: DomainError) -> tuple[Response, int]:
    response, code = _json_error(exc.code, exc.message, exc.errors)
    if code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="healthscore"'
    return response, code


def handle_http_exception(exc: HTTPException) -> tuple[Response, int] | HTTPException:
    code = exc.code or 500
    data = getattr(exc, "data", None) or {}
    message = data.get("message") or (exc.description if code < 500 else None)
    if isinstance(exc, InternalServerError) or code >= 500:
        message = "The server met an unexpected error; it has been logged."
    # webargs (through flask-smorest) puts field messages under "messages", keyed by location.
    return _json_error(code, message, data.get("errors") or data.get("messages"))


def handle_unexpected(exc: Exception) -> tuple[Response, int]:
    # Logged with the traceback; the body never leaks internals.
    logger.exception("unhandled error on %s %s", request.method, request.path)
    return _json_error(500, "The server met an unexpected error; it has been logged.")


def register_error_handlers(app: Flask) -> None:
    """Map domain errors and every HTTP error to the JSON body, once, for the whole app."""
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
