"""JSON over HTTP: bearer-token auth, pagination (cursor or next link), timeouts, retries with backoff."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from app.sources.base import Chunk, SourceUnavailable

#: A safety stop: a source whose "next" never ends is a broken source, not a big one.
MAX_PAGES = 100_000


class HttpSource:
    """GETs ``base_url + paths[kind]`` with ``since`` (ISO UTC, absent on the first pull) and
    ``as_of`` query parameters; each page is a JSON object with the records under ``records_key``
    and, to continue, either ``next`` (a URL, relative or absolute), ``next_cursor`` (sent back as
    ``cursor``) or a ``Link: <...>; rel="next"`` header."""

    def __init__(
        self,
        name: str,
        base_url: str,
        paths: dict[str, str],
        *,
        token: str | None = None,
        timeout_seconds: float = 10.0,
        retries: int = 3,
        backoff_seconds: float = 0.5,
        records_key: str = "data",
    ):
        self.name = name
        self.kinds = tuple(paths)
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.paths = paths
        self.timeout = timeout_seconds
        self.records_key = records_key
        self.session = requests.Session()
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=backoff_seconds,  # 0.5 s, 1 s, 2 s ... between tries
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))
        self.session.headers["Accept"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def _page(self, url: str, params: dict[str, str] | None) -> tuple[list[Any], str | None, dict[str, str] | None]:
        where = urlsplit(url)._replace(query="").geturl()  # never the token, never the query
        try:
            response = self.session.get(url, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise SourceUnavailable(f"{self.name}: GET {where} failed: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise SourceUnavailable(f"{self.name}: GET {where} answered HTTP {response.status_code}")
        try:
            page = response.json()
        except ValueError:
            page = None
        records = page.get(self.records_key) if isinstance(page, dict) else None
        if not isinstance(records, list):
            raise SourceUnavailable(
                f"{self.name}: GET {where} did not answer a JSON object with a {self.records_key!r} list"
            )
        if isinstance(page.get("next"), str) and page["next"]:
            return records, urljoin(url, page["next"]), None
        if page.get("next_cursor"):
            return records, url, {**(params or {}), "cursor": str(page["next_cursor"])}
        if "next" in response.links:
            return records, urljoin(url, response.links["next"]["url"]), None
        return records, None, None

    def pull(self, kind: str, *, since: dt.datetime | None, as_of: dt.date) -> Iterator[Chunk]:
        url: str | None = urljoin(self.base_url, self.paths[kind].lstrip("/"))
        first: dict[str, str] = {"as_of": as_of.isoformat()}
        if since is not None:
            first["since"] = since.astimezone(dt.UTC).isoformat()
        params: dict[str, str] | None = first
        for _ in range(MAX_PAGES):
            if url is None:
                return
            records, url, next_params = self._page(url, params)
            params = next_params
            if records:
                yield records
        raise SourceUnavailable(f"{self.name}: more than {MAX_PAGES} pages of {kind}; is its 'next' looping?")

    def dispose(self) -> None:
        self.session.close()
