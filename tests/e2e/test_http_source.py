"""The HTTP source against a real HTTP server on 127.0.0.1 that the tests start and stop."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import Account, DailyUsage
from app.services.ingest.pull import pull_source
from app.sources.base import SourceUnavailable
from app.sources.config import load_sources
from app.sources.http import HttpSource

TOKEN = "s3cret-token"
ACCOUNTS = [
    {"external_id": f"acct-{i}", "name": f"Account {i}", "contract_start": "2025-01-01", "seats_purchased": 10}
    for i in range(5)
]


class Handler(BaseHTTPRequestHandler):
    """Pages: /accounts (cursor, then next link, then Link header), /usage, /flaky, /slow, /garbage."""

    calls: list[tuple[str, dict[str, list[str]], str | None]] = []
    flaky_failures = 0

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        Handler.calls.append((url.path, query, self.headers.get("Authorization")))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_json(401, {"error": "unauthorized"})
        elif url.path == "/api/accounts" and "cursor" not in query:
            self.send_json(200, {"data": ACCOUNTS[:2], "next_cursor": "page2"})
        elif url.path == "/api/accounts" and query["cursor"] == ["page2"]:
            self.send_json(200, {"data": ACCOUNTS[2:4], "next": "/api/accounts-page3"})
        elif url.path == "/api/accounts-page3":
            self.send_json(200, {"data": ACCOUNTS[4:]}, {"Link": '</api/accounts-page4>; rel="next"'})
        elif url.path == "/api/accounts-page4":
            self.send_json(200, {"data": []})
        elif url.path == "/api/usage":
            self.send_json(200, {"data": [{"account": "acct-0", "day": "2026-06-01", "active_users": 4}]})
        elif url.path == "/api/flaky":
            if Handler.flaky_failures < 2:
                Handler.flaky_failures += 1
                self.send_json(503, {"error": "try later"}, {"Retry-After": "0"})
            else:
                self.send_json(200, {"data": [{"account": "acct-1", "day": "2026-06-02", "active_users": 3}]})
        elif url.path == "/api/slow":
            time.sleep(1.5)
            self.send_json(200, {"data": []})
        elif url.path == "/api/garbage":
            body = b"<html>maintenance</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_json(404, {"error": "no such page"})


@pytest.fixture
def server() -> Iterator[str]:
    Handler.calls = []
    Handler.flaky_failures = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/api"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def source(base: str, paths: dict[str, str], **kwargs: Any) -> HttpSource:
    return HttpSource("billing", base, paths, token=TOKEN, timeout_seconds=0.5, backoff_seconds=0.01, **kwargs)


def records(http: HttpSource, kind: str, since: dt.datetime | None = None) -> list[Any]:
    return [item for chunk in http.pull(kind, since=since, as_of=dt.date(2026, 6, 30)) for item in chunk]


@pytest.mark.e2e
def test_follows_cursor_next_link_and_link_header(server: str) -> None:
    http = source(server, {"accounts": "accounts"})
    assert [r["external_id"] for r in records(http, "accounts")] == [a["external_id"] for a in ACCOUNTS]
    _, first_query, auth = Handler.calls[0]
    assert auth == f"Bearer {TOKEN}" and first_query == {"as_of": ["2026-06-30"]}
    assert [call[0] for call in Handler.calls] == [
        "/api/accounts", "/api/accounts", "/api/accounts-page3", "/api/accounts-page4",
    ]  # fmt: skip
    since = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)
    records(http, "accounts", since)
    assert Handler.calls[4][1]["since"] == ["2026-06-01T08:00:00+00:00"]


@pytest.mark.e2e
def test_retries_server_errors_with_backoff(server: str) -> None:
    http = source(server, {"usage": "flaky"})
    assert records(http, "usage") == [{"account": "acct-1", "day": "2026-06-02", "active_users": 3}]
    assert [call[0] for call in Handler.calls] == ["/api/flaky"] * 3


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("path", "token", "reason"),
    [
        ("slow", TOKEN, "(checked below: the exception type varies)"),
        ("garbage", TOKEN, "did not answer a JSON object with a 'data' list"),
        ("usage", "wrong", "answered HTTP 401"),
        ("missing", TOKEN, "answered HTTP 404"),
    ],
)
def test_failures_raise_source_unavailable_with_the_reason(server: str, path: str, token: str, reason: str) -> None:
    http = HttpSource("billing", server, {"usage": path}, token=token, timeout_seconds=0.5, retries=1,
                      backoff_seconds=0.01)  # fmt: skip
    port = urlsplit(server).port
    with pytest.raises(SourceUnavailable) as excinfo:
        records(http, "usage")
    message = str(excinfo.value)
    assert TOKEN not in message
    if path == "slow":  # a read timeout surfaces as ConnectionError or ReadTimeout depending on urllib3
        assert f"GET http://127.0.0.1:{port}/api/slow failed:" in message
    else:
        assert reason in message


@pytest.mark.e2e
@pytest.mark.db
def test_pulled_from_http_into_the_database(db_session: Session, server: str, tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(
        f'[[sources]]\nname = "billing"\ntype = "http"\nbase_url = "{server}"\ntoken_env = "BILLING_TOKEN"\n'
        'every_minutes = 30\n[sources.paths]\naccounts = "accounts"\nusage = "usage"\n'
    )
    [configured] = load_sources(str(path), {"BILLING_TOKEN": TOKEN})
    with db_session.begin():
        summary = pull_source(db_session, configured.source, now=dt.datetime(2026, 6, 30, tzinfo=dt.UTC))
    assert summary.landed == {"accounts": 5, "usage": 1}
    with db_session.begin():
        assert db_session.scalar(sa.select(sa.func.count()).select_from(Account)) == 5
        assert db_session.scalar(sa.select(sa.func.count()).select_from(DailyUsage)) == 1
