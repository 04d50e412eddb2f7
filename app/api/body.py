"""Reading JSON request bodies ourselves: bodies loaded with a schema but refused with our own
message, and batches of records validated one by one."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import request
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError

from app.errors import DomainValidationError, MalformedInput, PayloadTooLarge, UnsupportedMediaType


def load_json_array(max_items: int) -> list[Any]:
    """The request's JSON array body, refused with a clear 4xx when it is not one.

    415 without a JSON content type, 400 for malformed JSON, 422 for anything but a non-empty
    array, 413 past ``max_items`` records.
    """
    data = load_json_body()
    if not isinstance(data, list):
        raise DomainValidationError(
            "Send a JSON array of records.", errors={"json": {"_schema": ["Expected an array of records."]}}
        )
    if not data:
        raise DomainValidationError("The batch is empty.", errors={"json": {"_schema": ["The batch is empty."]}})
    if len(data) > max_items:
        raise PayloadTooLarge(f"At most {max_items} records per batch; this one has {len(data)}.")
    return data


def load_json_body() -> Any:
    """The request's JSON body, whatever its shape: 415 without a JSON content type, 400 when broken."""
    if not request.is_json:
        raise UnsupportedMediaType("Send JSON, with Content-Type: application/json.")
    try:
        return json.loads(request.get_data(cache=False))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedInput(f"The body is not valid JSON: {exc}.") from None


def load_with(schema: Schema, data: Any, message: str) -> Any:
    """``data`` (a JSON body) loaded by ``schema``; a 422 with ``message`` and the field messages
    under ``errors.json`` when it is invalid."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise DomainValidationError(message, errors={"json": exc.normalized_messages()}) from None


def load_segment_calls(max_items: int) -> list[Any]:
    """The calls of a Segment body: one call object, or ``{"batch": [...]}`` as Segment's batch API.

    Refused like ``load_json_array``: 415, 400, 422 for anything else or an empty batch, 413.
    """
    body = load_json_body()
    calls = body.get("batch") if isinstance(body, dict) and "batch" in body else [body]
    if not isinstance(body, dict) or not isinstance(calls, list) or not calls:
        raise DomainValidationError(
            'Send one Segment call or {"batch": [calls]}.', errors={"json": {"_schema": ["Not a call or a batch."]}}
        )
    if len(calls) > max_items:
        raise PayloadTooLarge(f"At most {max_items} calls per batch; this one has {len(calls)}.")
    return calls


# --- documenting a JSON body in the OpenAPI document -----------------------------------------------


def json_body_doc(schema: Any, description: str | None = None, *, required: bool = True) -> dict[str, Any]:
    """``@bp.doc(**json_body_doc(...))``: a route that reads its JSON body itself (with
    ``load_json_body``) still shows the body's schema in the OpenAPI document."""
    body: dict[str, Any] = {"required": required, "content": {"application/json": {"schema": schema}}}
    if description is not None:
        body["description"] = description
    return {"requestBody": body}


def body_refusals(bp: Blueprint, invalid: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator documenting the refusals of a JSON-body write: 400 (malformed JSON), 415 (not
    JSON) and 422 (``invalid``: what an invalid body is)."""

    def document(view: Callable[..., Any]) -> Callable[..., Any]:
        view = bp.alt_response(400, description="Malformed JSON")(view)
        view = bp.alt_response(415, description="Not JSON")(view)
        return bp.alt_response(422, description=invalid)(view)

    return document
