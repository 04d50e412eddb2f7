"""Reading JSON request bodies ourselves: bodies loaded with a schema but refused with our own
message, and batches of records validated one by one."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import flask_smorest
from flask import Request, g, request
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError
from webargs.flaskparser import FlaskParser, is_json_request

from app.errors import DomainValidationError, MalformedInput, PayloadTooLarge, UnsupportedMediaType
from app.validation import JSONTooDeep, loads_json


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
    return parsed_json_body(request)


def parsed_json_body(req: Request) -> Any:
    """The request's body read by ``app.validation.loads_json``, once per request: 400 when it is
    not JSON, 422 when it nests too deep. Numbers nothing can store stay text, for the fields to
    refuse one by one."""
    if "json_body" not in g:
        try:
            g.json_body = loads_json(req.get_data(cache=True))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedInput(f"The body is not valid JSON: {exc}.") from None
        except JSONTooDeep as exc:
            raise DomainValidationError(str(exc), errors={"json": {"_schema": [str(exc)]}}) from None
    return g.json_body


class SafeJsonParser(FlaskParser):
    """webargs' parser reading JSON bodies as ``load_json_body`` does (``loads_json``)."""

    def _raw_load_json(self, req: Request) -> Any:
        return parsed_json_body(req) if is_json_request(req) else super()._raw_load_json(req)


class ApiBlueprint(flask_smorest.Blueprint):
    """The blueprint of views whose ``@bp.arguments`` read a JSON body: through ``SafeJsonParser``."""

    ARGUMENTS_PARSER = SafeJsonParser()


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
