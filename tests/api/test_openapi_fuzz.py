"""Schemathesis over the whole OpenAPI document, authenticated as an admin, on a small scored demo
portfolio: no operation answers 5xx, and every response matches the schema the document gives.

Schemathesis puts NUL characters in its strings already; it never generates unpaired surrogates
(they cannot be encoded for a URL), so half the cases get one salted into their JSON body's
strings (where JSON escapes carry them) and a NUL into their query's.

Bounded in time: a fixed number of generated cases per operation (``HS_FUZZ_EXAMPLES``,
default 15), on SQLite (the database half of the suite covers PostgreSQL; ``HS_FUZZ_BACKEND=postgresql``
runs this one there).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error, response_schema_conformance
from sqlalchemy.orm import sessionmaker

from app import create_app, migrate
from app.auth import create_token
from app.db import make_engine
from app.demo.seed import seed_demo
from app.models import Role
from app.pipeline.run import run_scoring
from config import TestConfig
from tests.pg import postgres_base_url, postgres_schema, postgres_unreachable_reason
from tests.support.auth import bearer

pytestmark = [pytest.mark.api, pytest.mark.db]

AS_OF = dt.date(2026, 6, 30)
EXAMPLES = int(os.environ.get("HS_FUZZ_EXAMPLES", "15"))
SALTS = ("\x00", "\ud800", "\udfff", "a\udc00b")


def salted(value: object, salt: str) -> object:
    """``value`` (a JSON body) with ``salt`` appended to every string in it, keys included."""
    if isinstance(value, str):
        return value + salt
    if isinstance(value, dict):
        return {salted(k, salt): salted(v, salt) for k, v in value.items()}
    if isinstance(value, list):
        return [salted(v, salt) for v in value]
    return value


@pytest.fixture(scope="module")
def fuzz_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLite by default; ``HS_FUZZ_BACKEND=postgresql`` fuzzes on PostgreSQL (NUL characters
    fail there, not on SQLite)."""
    if os.environ.get("HS_FUZZ_BACKEND") == "postgresql":
        reason = postgres_unreachable_reason(postgres_base_url())
        if reason:
            pytest.skip(reason)
        with postgres_schema("hs_fuzz") as url:
            yield url
        return
    yield f"sqlite:///{Path(tmp_path_factory.mktemp('fuzz')) / 'fuzz.db'}"


@pytest.fixture(scope="module")
def fuzz_app(fuzz_url: str) -> Iterator[tuple[Flask, str]]:
    url = fuzz_url
    engine = make_engine(url)
    migrate.upgrade(engine)
    with sessionmaker(bind=engine).begin() as session:
        seed_demo(session, accounts=40, days=70, seed=3, as_of=AS_OF)
    for day in (AS_OF - dt.timedelta(days=7), AS_OF):
        with sessionmaker(bind=engine).begin() as session:
            run_scoring(session, as_of=day)
    with sessionmaker(bind=engine).begin() as session:
        _, token = create_token(session, "fuzzer", Role.ADMIN)
    engine.dispose()
    app = create_app(TestConfig(DATABASE_URL=url))
    yield app, token
    app.extensions["engine"].dispose()


@pytest.fixture(scope="module")
def api_schema(fuzz_app: tuple[Flask, str]) -> schemathesis.BaseSchema:
    app, _ = fuzz_app
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


@pytest.fixture(scope="module")
def admin_headers(fuzz_app: tuple[Flask, str]) -> dict[str, str]:
    return bearer(fuzz_app[1])


def test_no_server_errors_and_responses_match_the_document(
    api_schema: schemathesis.BaseSchema, admin_headers: dict[str, str]
) -> None:
    # One hypothesis run per operation (schemathesis' own pytest plugin does not run under pytest 9).
    failures: list[str] = []
    operations = 0
    cases = {"all": 0, "salted": 0}
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy(), salt=st.one_of(st.none(), st.sampled_from(SALTS)))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
        )
        def run(case: schemathesis.Case, salt: str | None) -> None:
            cases["all"] += 1
            extra: dict[str, object] = {}
            headers = dict(admin_headers)
            if salt is not None and (isinstance(case.body, dict | list) or case.query):
                cases["salted"] += 1
                if isinstance(case.body, dict | list):
                    # Serialized here: JSON's escapes carry a surrogate that UTF-8 cannot.
                    extra["data"] = json.dumps(salted(case.body, salt)).encode("ascii")
                    headers["Content-Type"] = "application/json"
                if case.query:
                    case.query = {k: (v + "\x00" if isinstance(v, str) else v) for k, v in case.query.items()}
            case.call_and_validate(headers=headers, checks=[not_a_server_error, response_schema_conformance], **extra)

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then fail once
            failures.append(f"{operation.label}: {str(exc)[:2000]}")
    print(f"schemathesis: {operations} operations, {cases['all']} cases, {cases['salted']} salted")
    assert operations >= 15
    assert not failures, "\n\n".join(failures)
