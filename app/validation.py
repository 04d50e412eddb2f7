"""The base of every marshmallow loader of outside data: API bodies and query strings
(``app.schemas.ApiSchema``) and ingested records (``app.records``), and the JSON reader they
share (``loads_json``).

What no stored value may hold is refused here, once, as a field error (422), never later as a
database error (500): NUL characters (PostgreSQL's text and JSONB refuse them), lone UTF-16
surrogates (no UTF-8 encoder takes them), integers past a database INTEGER, numbers past
``MAX_NUMBER`` or not finite, and JSON nested deeper than ``MAX_JSON_DEPTH``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate

#: The largest integer the databases store in an INTEGER column (PostgreSQL's is 32-bit).
MAX_INT = 2**31 - 1
#: The largest magnitude a decimal number may have (ARR, scores, weights...): far past any real
#: value, and far from float overflow in sums and products.
MAX_NUMBER = 1e15
#: The deepest nesting a JSON body may have (the deepest the API reads is about 6).
MAX_JSON_DEPTH = 32
#: Integer literals longer than this are not read as numbers (Python refuses past 4,300 digits,
#: and nothing stored is anywhere near): they stay a string, which a number field then refuses.
MAX_INT_DIGITS = 40

BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
BAD_TEXT_MESSAGE = "Must not contain NUL characters or unpaired UTF-16 surrogates."
BAD_NUMBER_MESSAGE = "Not a number that can be stored (too large, or not finite)."


class JSONTooDeep(ValueError):
    """The JSON document nests deeper than ``MAX_JSON_DEPTH``."""


class UnreadableNumber:
    """A JSON number no field can take (NaN, Infinity, 1e400, thousands of digits), kept as its
    text: every schema refuses it as a field error (``SafeTextSchema``), so only its record fails."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"UnreadableNumber({self.text[:20]!r})"


def _parse_int(text: str) -> int | UnreadableNumber:
    return int(text) if len(text.lstrip("-")) <= MAX_INT_DIGITS else UnreadableNumber(text)


def _parse_float(text: str) -> float | UnreadableNumber:
    value = float(text)
    return value if math.isfinite(value) else UnreadableNumber(text)


def loads_json(data: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON as the API reads it. Numbers that no field could take (NaN, Infinity, 1e400, an
    integer of thousands of digits) are kept as an ``UnreadableNumber``, so the record holding them is refused
    on its own with a field message while the rest of a batch is read. Raises
    ``json.JSONDecodeError`` or ``UnicodeDecodeError`` for broken JSON and ``JSONTooDeep``."""
    text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=UnreadableNumber)
    except RecursionError:
        raise JSONTooDeep(f"JSON nested deeper than {max_depth} levels.") from None
    if json_depth(value) > max_depth:
        raise JSONTooDeep(f"JSON nested deeper than {max_depth} levels.")
    return value


def json_depth(value: Any) -> int:
    """How deeply ``value`` nests lists and dicts (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def unsafe_value(value: Any) -> str | None:
    """The message for the first value in ``value`` (dict keys included, at any depth) that
    nothing may store: text with a NUL character or an unpaired surrogate, or an
    ``UnreadableNumber``; None when there is none."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if BAD_TEXT.search(item):
                return BAD_TEXT_MESSAGE
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, UnreadableNumber):
            return BAD_NUMBER_MESSAGE
    return None


def unsafe_value_errors(data: Any) -> dict[str, list[str]]:
    """Field messages for the top-level fields of ``data`` (a mapping, a query string's
    MultiDict included) holding an ``unsafe_value``; a bad key is reported under ``_schema``
    (never echoed: the error body must stay valid UTF-8)."""
    errors: dict[str, list[str]] = {}
    if not isinstance(data, Mapping):
        problem = unsafe_value(data)
        return {"_schema": [problem]} if problem else {}
    getlist = getattr(data, "getlist", None)
    for key in data:
        if not isinstance(key, str) or BAD_TEXT.search(key):
            errors["_schema"] = ["A field name must not contain NUL characters or unpaired UTF-16 surrogates."]
            continue
        problem = unsafe_value(getlist(key) if getlist is not None else data[key])
        if problem:
            errors[key] = [problem]
    return errors


class SafeTextSchema(Schema):
    """Refuses NUL characters and unpaired surrogates anywhere in its input (keys, nested dicts
    and lists), unreadable numbers (``loads_json``), and numbers past their bounds, as field
    errors. The base of every loader of outside data, including those that ignore unknown keys
    (Segment's calls)."""

    @pre_load
    def _refuse_bad_text(self, data: Any, **kwargs: Any) -> Any:
        errors = unsafe_value_errors(data)
        if errors:
            raise ValidationError(errors)
        return data

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        if field_obj.dump_only:
            return
        if isinstance(field_obj, fields.Integer):
            field_obj.validators = [*field_obj.validators, validate.Range(min=-MAX_INT - 1, max=MAX_INT)]
        elif isinstance(field_obj, fields.Float):
            field_obj.validators = [*field_obj.validators, validate.Range(min=-MAX_NUMBER, max=MAX_NUMBER)]


class StrictSchema(SafeTextSchema):
    """Rejects unknown keys. ``unknown`` does not propagate to nested schemas, so it lives here.

    Every integer it loads must fit a database INTEGER and every decimal number ``MAX_NUMBER``: a
    larger one is a field error (422), never an overflow in the database (500). Text holding NUL
    characters or unpaired surrogates is a field error too (``SafeTextSchema``).
    """

    class Meta:
        unknown = RAISE


def scrub_text(value: Any) -> Any:
    """A copy of ``value`` (JSON-like) with NUL characters and unpaired surrogates replaced by
    U+FFFD, in keys and strings at any depth: for keeping refused input (the quarantine)."""
    if isinstance(value, str):
        return BAD_TEXT.sub("\ufffd", value)
    if isinstance(value, dict):
        return {scrub_text(key): scrub_text(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_text(item) for item in value]
    return value
