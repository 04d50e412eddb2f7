"""A folder of files: ``<kind>.jsonl`` (one JSON object per line) or ``<kind>.csv`` (a header row)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from marshmallow import fields

from app.records import KINDS as KIND_SPECS
from app.sources.base import Chunk, Malformed, SourceUnavailable

_INTEGER = re.compile(r"-?\d+\Z")


def _csv_value(field: fields.Field | None, value: str) -> Any:  # noqa: PLR0911 - one return per field type
    """A CSV cell as the JSON value the record schema expects (text stays text when unsure)."""
    if isinstance(field, fields.Integer) and _INTEGER.match(value):
        return int(value)
    if isinstance(field, fields.Float):
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(field, fields.Boolean) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
        return value.lower() in {"true", "1", "yes"}
    if isinstance(field, fields.Dict):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


class FileSource:
    """Reads ``<folder>/<kind>.jsonl`` or ``<kind>.csv`` for each kind; a file unchanged since the
    last good pull is skipped (its records are already stored, and re-reading would change nothing)."""

    def __init__(self, name: str, folder: Path, kinds: tuple[str, ...], chunk_size: int = 5_000):
        self.name = name
        self.folder = folder
        self.kinds = kinds
        self.chunk_size = chunk_size

    def _file(self, kind: str) -> Path | None:
        for suffix in (".jsonl", ".csv"):
            path = self.folder / f"{kind}{suffix}"
            if path.is_file():
                return path
        return None

    def pull(self, kind: str, *, since: dt.datetime | None, as_of: dt.date) -> Iterator[Chunk]:
        if not self.folder.is_dir():
            raise SourceUnavailable(f"{self.name}: folder {self.folder} does not exist")
        path = self._file(kind)
        if path is None:
            return
        modified = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        if since is not None and modified <= since:
            return
        try:
            with path.open(encoding="utf-8", newline="") as handle:
                items = self._csv(kind, handle) if path.suffix == ".csv" else self._jsonl(handle)
                chunk: list[dict[str, Any] | Malformed] = []
                for item in items:
                    chunk.append(item)
                    if len(chunk) >= self.chunk_size:
                        yield chunk
                        chunk = []
                if chunk:
                    yield chunk
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise SourceUnavailable(f"{self.name}: cannot read {path.name}: {exc}") from exc

    @staticmethod
    def _jsonl(handle: Any) -> Iterator[dict[str, Any] | Malformed]:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                yield Malformed(line.rstrip("\n")[:10_000], f"line {number}: not valid JSON ({exc.msg})")

    @staticmethod
    def _csv(kind: str, handle: Any) -> Iterator[dict[str, Any] | Malformed]:
        schema_fields = KIND_SPECS[kind].schema().fields
        for row in csv.DictReader(handle):
            if None in row:  # more cells than header columns
                yield Malformed(json.dumps(row, default=str)[:10_000], "more cells than the header has columns")
                continue
            yield {key: _csv_value(schema_fields.get(key), value) for key, value in row.items() if value != ""}
