"""The sources file (TOML, path in ``HS_SOURCES_FILE``): which sources to pull, how and how often.

```toml
[[sources]]
name = "warehouse"
type = "sql"
url_env = "WAREHOUSE_URL"          # secrets come from the environment, never from this file
every_minutes = 60
[sources.queries]
usage = "SELECT account, day, active_users, logins FROM usage_daily WHERE updated_at > :since AND day <= :as_of"

[[sources]]
name = "inbox"
type = "files"
folder = "instance/inbox"          # <kind>.jsonl or <kind>.csv
every_minutes = 5
```
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from app.errors import DomainValidationError
from app.sources.base import KINDS, Source
from app.sources.files import FileSource
from app.sources.sql import SqlSource

_NAME = validate.Regexp(r"^[a-z0-9][a-z0-9_-]{0,63}$", error="Use lowercase letters, digits, - and _.")


class _SourceSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=_NAME)
    type = fields.String(required=True, validate=validate.OneOf(["files", "sql", "http"]))
    every_minutes = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=7 * 24 * 60))
    folder = fields.String()
    kinds = fields.List(fields.String(validate=validate.OneOf(KINDS)))
    url_env = fields.String(validate=validate.Regexp(r"^[A-Z_][A-Z0-9_]*$", error="An environment variable name."))
    queries = fields.Dict(keys=fields.String(validate=validate.OneOf(KINDS)), values=fields.String())
    base_url = fields.Url(schemes={"http", "https"}, require_tld=False)
    paths = fields.Dict(keys=fields.String(validate=validate.OneOf(KINDS)), values=fields.String())
    token_env = fields.String(validate=validate.Regexp(r"^[A-Z_][A-Z0-9_]*$", error="An environment variable name."))
    timeout_seconds = fields.Float(validate=validate.Range(min=0.1, max=300))
    retries = fields.Integer(strict=True, validate=validate.Range(min=0, max=10))
    records_key = fields.String(validate=validate.Length(min=1))

    @validates_schema
    def _type_fields(self, data: dict[str, Any], **kwargs: Any) -> None:
        needed = {"files": ("folder",), "sql": ("url_env", "queries"), "http": ("base_url", "paths")}[data["type"]]
        missing = {name: ["Required for a " + data["type"] + " source."] for name in needed if name not in data}
        if missing:
            raise ValidationError(missing)


class _SourcesFileSchema(Schema):
    class Meta:
        unknown = RAISE

    sources = fields.List(fields.Nested(_SourceSchema), required=True)

    @validates_schema
    def _unique_names(self, data: dict[str, Any], **kwargs: Any) -> None:
        names = [source["name"] for source in data["sources"]]
        if len(names) != len(set(names)):
            raise ValidationError("Source names must be unique.", "sources")


@dataclass(frozen=True, slots=True)
class ConfiguredSource:
    source: Source
    every_minutes: int


def load_sources(path: str | None, env: Mapping[str, str] | None = None) -> list[ConfiguredSource]:
    """The sources declared in the file at ``path`` (none when ``path`` is empty).

    Raises ``DomainValidationError`` naming the file and every problem: unreadable TOML, unknown
    keys, missing fields, unset environment variables.
    """
    if not path:
        return []
    env = os.environ if env is None else env
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DomainValidationError(f"Cannot read the sources file {file}: {exc}") from exc
    try:
        data = _SourcesFileSchema().load(raw)
    except ValidationError as exc:
        raise DomainValidationError(f"The sources file {file} is invalid.", errors=exc.normalized_messages()) from exc
    configured = []
    for entry in data["sources"]:
        if entry["type"] == "files":
            folder = Path(entry["folder"])
            if not folder.is_absolute():
                folder = file.parent / folder
            source: Source = FileSource(entry["name"], folder, tuple(entry.get("kinds", KINDS)))
        elif entry["type"] == "http":
            from app.sources.http import HttpSource  # requests: imported when a file names an HTTP source

            token = None
            if "token_env" in entry:
                token = env.get(entry["token_env"])
                if not token:
                    raise DomainValidationError(
                        f"The sources file {file}: source {entry['name']!r} needs the environment variable "
                        f"{entry['token_env']}, which is not set."
                    )
            source = HttpSource(
                entry["name"],
                entry["base_url"],
                entry["paths"],
                token=token,
                timeout_seconds=entry.get("timeout_seconds", 10.0),
                retries=entry.get("retries", 3),
                records_key=entry.get("records_key", "data"),
            )
        else:
            url = env.get(entry["url_env"])
            if not url:
                raise DomainValidationError(
                    f"The sources file {file}: source {entry['name']!r} needs the environment variable "
                    f"{entry['url_env']}, which is not set."
                )
            source = SqlSource(entry["name"], url, entry["queries"])
        configured.append(ConfiguredSource(source, entry["every_minutes"]))
    return configured
