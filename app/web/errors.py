"""Errors on a page answer with a page; every page blueprint checks CSRF on its forms."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, NotFound

from app.errors import DomainError, handle_http_exception
from app.web.access import csrf


def guard(bp: Blueprint) -> Blueprint:
    """CSRF on every unsafe request of ``bp`` (a missing or forged token is a 400 page before the
    view runs, so nothing changes), and its errors as pages."""
    bp.before_request(csrf.protect)
    for error in (DomainError, HTTPException):
        bp.register_error_handler(error, error_page)
    return bp


_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 405: "Not allowed", 409: "Conflict",
           413: "Too large", 422: "Check the form", 429: "Too many attempts"}  # fmt: skip


CSRF_MESSAGE = (
    "The form was stale or not sent by this site (CSRF check failed): nothing was changed. "
    "Go back, reload the page and try again."
)


def error_page(exc: Exception) -> tuple[str, int]:
    """An error on a page, as a page: the status, a title and the reason (no internals)."""
    code, message = 500, "The server met an unexpected error."
    if isinstance(exc, CSRFError):
        code, message = 400, CSRF_MESSAGE
    elif isinstance(exc, DomainError):
        code, message = exc.code, exc.message
    elif isinstance(exc, HTTPException):
        code = exc.code or 500
        message = (exc.description or message) if code < 500 else message
    context: dict[str, Any] = {"code": code, "title": _TITLES.get(code, "Error"), "message": message}
    context["path"] = request.path
    return render_template("web/error.html", **context), code


def not_found(exc: NotFound) -> Any:
    """An unknown URL: the API's JSON body under ``/api/``, a page anywhere else (an account id too
    large to be one, a mistyped page)."""
    if request.path.startswith("/api/"):
        return handle_http_exception(exc)
    return error_page(exc)
