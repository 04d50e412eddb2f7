"""The pure cores report meaning errors by dotted path (``measures.2.thresholds``); the API and
the services answer with marshmallow's nested error dict. This turns the one into the other."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: Where marshmallow puts the messages of a node that also has children.
SCHEMA = "_schema"


def nest_error_paths(
    errors: Mapping[str, list[str]],
    *,
    indexed: Iterable[str] = ("measures", "rules"),
    whole_after: str | None = "weights.",
) -> dict[str, Any]:
    """Turn dotted error paths into marshmallow's nested error dict.

    ``measures.2.thresholds`` becomes ``{"measures": {2: {"thresholds": [...]}}}``: a digit part
    after one of the ``indexed`` keys is a list index, an int as marshmallow reports it. In a path
    starting with ``whole_after`` (``weights.<stage>.<measure>``) the last part is kept whole. A
    path that is both a leaf and a parent keeps its own messages under ``_schema``.
    """
    lists = frozenset(indexed)
    nested: dict[Any, Any] = {}  # the top level keys are field names; ints appear below
    for path, messages in errors.items():
        keys = _split_error_path(path, lists, whole_after)
        node = nested
        for key in keys[:-1]:
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            elif isinstance(child, list):
                child = node[key] = {SCHEMA: child}
            node = child
        leaf = node.get(keys[-1])
        if isinstance(leaf, dict):
            leaf.setdefault(SCHEMA, []).extend(messages)
        else:
            node[keys[-1]] = [*(leaf or []), *messages]
    return nested


def _split_error_path(path: str, lists: frozenset[str], whole_after: str | None) -> list[str | int]:
    parts = path.split(".", 2) if whole_after is not None and path.startswith(whole_after) else path.split(".")
    return [int(part) if i > 0 and parts[i - 1] in lists and part.isdigit() else part for i, part in enumerate(parts)]


def nest_play_errors(errors: Mapping[str, list[str]]) -> dict[str, Any]:
    """``nest_error_paths`` for a play: task and trigger-rule indexes are list indexes."""
    return nest_error_paths(errors, indexed=("measures", "rules", "tasks"), whole_after="weights.")
