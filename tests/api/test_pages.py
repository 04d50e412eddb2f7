"""The pages through the Flask test client: every route with every role, sign-in and its limits,
sessions and cookies, CSRF, forms shown again with their messages, invitations and resets."""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import sessionmaker

from app.models import Account, Role, Task, TaskStatus, User, WatchlistPin
from app.services.alerts.settings import AlertSettings
from app.web import BLUEPRINTS
from tests.support.auth import bearer
from tests.support.web import PASSWORD, Portfolio, csrf_token, make_portfolio, sign_in

pytestmark = [pytest.mark.api, pytest.mark.db]

ROLES = ("anonymous", "csm", "manager", "admin", "viewer")
ADMIN_ONLY = {"anonymous": 302, "csm": 403, "manager": 403, "admin": 200, "viewer": 403}


@pytest.fixture
def portfolio(engine: sa.Engine) -> Portfolio:
    return make_portfolio(engine, accounts=24, history_days=8)


def _client(app: Flask, portfolio: Portfolio, role: str) -> FlaskClient:
    client = app.test_client()
    if role != "anonymous":
        sign_in(client, portfolio.emails[role])
    return client


def _get_matrix(p: Portfolio) -> list[tuple[str, str, dict[str, int]]]:
    """(endpoint, path, expected status by role) for every page a GET opens."""
    everyone = {"anonymous": 302, "csm": 200, "manager": 200, "admin": 200, "viewer": 200}
    workers = {**everyone, "viewer": 403}
    return [
        ("web.home", "/", {role: 302 for role in ROLES}),
        ("web.watchlist", "/watchlist", everyone),
        ("web.account", f"/accounts/{p.own_account}", everyone),
        # Another book: a CSM and the manager (not their team) are refused; admins and viewers read all.
        ("web.account", f"/accounts/{p.other_account}", {**everyone, "csm": 403, "manager": 403}),
        ("web.my_work", "/my-work", workers),
        ("web.team", "/team", {**workers, "csm": 403}),
        ("web.digest", "/team/digest", {**workers, "csm": 403}),
        (
            "web_admin.users",
            "/admin/users",
            {"anonymous": 302, "csm": 403, "manager": 403, "admin": 200, "viewer": 403},
        ),
        ("web_console.config", "/admin/config?from=1&to=1", ADMIN_ONLY),
        ("web_console.measure", "/admin/config/measure?name=nps", ADMIN_ONLY),
        ("web_console.jobs", "/admin/jobs", ADMIN_ONLY),
        ("web_console.job_request", "/admin/jobs/requests/999999", {**ADMIN_ONLY, "admin": 404}),
        ("web_console.routing", "/admin/routing", ADMIN_ONLY),
        ("web_console.quarantine", "/admin/quarantine", ADMIN_ONLY),
        ("web_auth.sign_in", "/sign-in", {"anonymous": 200, "csm": 302, "manager": 302, "admin": 302, "viewer": 302}),
        ("web_auth.set_password", "/set-password?token=nope", {role: 404 for role in ROLES}),
        # SSO is off unless configured (tests/e2e/test_sso.py runs it against a real provider).
        ("web_auth.sso_start", "/sign-in/sso", {role: 404 for role in ROLES}),
        ("web_auth.sso_callback", "/sign-in/sso/callback?code=x&state=y", {role: 404 for role in ROLES}),
    ]


def _post_matrix(p: Portfolio) -> list[tuple[str, str, dict[str, str], dict[str, int]]]:
    """(endpoint, path, form, expected status by role) for every form; 302 is done (or sent to sign in)."""
    own, other = p.own_account, p.other_account
    change = {"anonymous": 302, "csm": 302, "manager": 302, "admin": 302, "viewer": 403}
    refused = {**change, "csm": 403, "manager": 403}
    later = (dt.date.today() + dt.timedelta(days=20)).isoformat()
    return [
        ("web.pin", f"/accounts/{own}/pin", {"reason": "renewal talk"}, change),
        ("web.pin", f"/accounts/{other}/pin", {"reason": "not mine"}, refused),
        ("web.unpin", f"/accounts/{own}/unpin", {}, change),
        (
            "web.override",
            f"/accounts/{own}/override",
            {"band": "average", "reason": "call went well", "expires_at": later},
            change,
        ),
        ("web.revoke", f"/accounts/{own}/override/revoke", {}, change),
        ("web.task", "/tasks/999999", {"status": "done"}, {**change, "csm": 404, "manager": 404, "admin": 404}),
        ("web.acknowledge", "/alerts/999999/acknowledge", {}, {**change, "csm": 404, "manager": 404, "admin": 404}),
        (
            "web_admin.invite",
            "/admin/users",
            {"name": "x", "email": "x@example.com", "role": "csm"},
            {**refused, "admin": 200},
        ),
        ("web_admin.reset", "/admin/users/reset", {"who": "maya@example.com"}, {**refused, "admin": 200}),
        (
            "web_console.change",
            "/admin/config",
            {"action": "preview", "weights.established.nps": "7"},
            {**refused, "admin": 200},
        ),
        ("web_console.activate", "/admin/config/versions/999/activate", {}, {**refused, "admin": 404}),
        ("web_console.change_measure", "/admin/config/measure", {"action": "preview"}, {**refused, "admin": 422}),
        ("web_admin.user_state", "/admin/users/999999/disable", {"disabled": "true"}, {**refused, "admin": 404}),
        ("web_admin.revoke", "/admin/tokens/revoke", {"prefix": "hs_nosuchtoken"}, {**refused, "admin": 404}),
        ("web_console.replace_routing", "/admin/routing", {"version": "0", "document": "{"}, {**refused, "admin": 422}),
        ("web_console.retry", "/admin/quarantine/retry", {}, {**refused, "admin": 200}),
        ("web_auth.sign_out", "/sign-out", {}, {role: 302 for role in ROLES}),
    ]


def test_pages_every_route_with_every_role(app: Flask, portfolio: Portfolio) -> None:
    """Each page and form answers each role as the API's roles and books say; no route is left out.
    One signed-in client per role walks them in order (a pin, then its unpin; sign-out last)."""
    gets, posts = _get_matrix(portfolio), _post_matrix(portfolio)
    routes = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.split(".")[0] in
              {bp.name for bp in BLUEPRINTS}}  # fmt: skip
    assert routes == {e for e, *_ in gets} | {e for e, *_ in posts}, "a page route is missing from the matrix"
    for role in ROLES:
        client = _client(app, portfolio, role)
        for endpoint, path, expected in gets:
            response = client.get(path)
            assert response.status_code == expected[role], (role, endpoint, path)
            if expected[role] == 302 and role == "anonymous" and endpoint != "web.home":
                assert response.headers["Location"].startswith("/sign-in?next=")
            if response.status_code in (403, 404):
                assert response.mimetype == "text/html"  # a page, never the API's JSON
        token = csrf_token(client, "/sign-in" if role == "anonymous" else "/watchlist")
        for endpoint, path, form, expected in posts:
            response = client.post(path, data={**form, "csrf_token": token})
            assert response.status_code == expected[role], (
                role,
                endpoint,
                path,
                response.get_data(as_text=True)[-400:],
            )


def test_pages_sign_in_is_refused_with_a_wrong_password_and_keeps_the_email(app: Flask, portfolio: Portfolio) -> None:
    client = app.test_client()
    response = client.post(
        "/sign-in", data={"email": "maya@example.com", "password": "wrong password", "csrf_token": csrf_token(client)}
    )
    assert response.status_code == 401
    text = response.get_data(as_text=True)
    assert "Email or password is wrong." in text and 'value="maya@example.com"' in text
    assert client.get("/watchlist").status_code == 302


def test_pages_sign_in_is_throttled_per_account_and_per_address(app: Flask, portfolio: Portfolio) -> None:
    client = app.test_client()
    token = csrf_token(client)
    codes = [
        client.post(
            "/sign-in",
            data={"email": "maya@example.com", "password": "nope nope", "csrf_token": token},
            environ_base={"REMOTE_ADDR": f"10.0.0.{i}"},
        ).status_code
        for i in range(7)
    ]
    # Five a minute per account, whatever the address; then even the right password waits.
    assert codes == [401] * 5 + [429] * 2
    right = client.post("/sign-in", data={"email": "maya@example.com", "password": PASSWORD, "csrf_token": token},
                        environ_base={"REMOTE_ADDR": "10.0.0.99"})  # fmt: skip
    assert right.status_code == 429 and "Too many attempts" in right.get_data(as_text=True)
    # Twenty a minute per address, whatever the account.
    codes = [
        client.post(
            "/sign-in",
            data={"email": f"who{i}@example.com", "password": "x", "csrf_token": token},
            environ_base={"REMOTE_ADDR": "10.9.9.9"},
        ).status_code
        for i in range(21)
    ]
    assert codes[:20] == [401] * 20 and codes[20] == 429


def test_pages_session_cookie_is_httponly_samesite_with_an_expiry_and_secure_when_configured(
    engine: sa.Engine, database_url: str, portfolio: Portfolio
) -> None:
    from app import create_app
    from config import TestConfig

    app = create_app(TestConfig(DATABASE_URL=database_url, SESSION_COOKIE_SECURE=True))
    try:
        client = app.test_client()
        https = {"base_url": "https://hs.example.com", "headers": {"Referer": "https://hs.example.com/sign-in"}}
        page = client.get("/sign-in", **https).get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        form = {"email": "maya@example.com", "password": PASSWORD, "csrf_token": token}
        response = client.post("/sign-in", data=form, **https)
        assert response.status_code == 302
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie and "Expires=" in cookie
    finally:
        app.extensions["engine"].dispose()


def test_pages_api_requests_stay_cookie_free(app: Flask, portfolio: Portfolio, issue_token) -> None:  # type: ignore[no-untyped-def]
    client = sign_in(app.test_client(), portfolio.emails["admin"])
    # A signed-in browser's cookie is no API credential, and the API never sets one.
    refused = client.get("/api/v1/watchlist")
    assert refused.status_code == 401 and "Set-Cookie" not in refused.headers
    answered = app.test_client().get("/api/v1/watchlist", headers=bearer(issue_token(Role.ADMIN)))
    assert answered.status_code == 200 and "Set-Cookie" not in answered.headers


def test_pages_expired_session_signs_in_again_and_returns_to_the_page(app: Flask, portfolio: Portfolio) -> None:
    client = sign_in(app.test_client(), portfolio.emails["csm"])
    path = f"/accounts/{portfolio.own_account}"
    assert client.get(path).status_code == 200
    app.permanent_session_lifetime = dt.timedelta(seconds=1)
    time.sleep(2.1)
    response = client.get(path)
    assert response.status_code == 302 and response.headers["Location"] == f"/sign-in?next={path}"
    token = csrf_token(client, response.headers["Location"])
    back = client.post("/sign-in", data={"email": portfolio.emails["csm"], "password": PASSWORD, "next": path,
                                         "csrf_token": token})  # fmt: skip
    assert back.status_code == 302 and back.headers["Location"] == path


def test_pages_sign_in_never_redirects_off_site(app: Flask, portfolio: Portfolio) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        client = app.test_client()
        token = csrf_token(client)
        response = client.post("/sign-in", data={"email": "maya@example.com", "password": PASSWORD, "next": target,
                                                  "csrf_token": token})  # fmt: skip
        assert response.headers["Location"] == "/watchlist"


def _pins(engine: sa.Engine, account_id: int) -> int:
    with sessionmaker(bind=engine).begin() as session:
        return session.scalar(sa.select(sa.func.count()).where(WatchlistPin.account_id == account_id)) or 0


@pytest.mark.parametrize("token", [None, "forged-token", "IjA1NzY4ZGE0In0.aaaa.bbbb"])
def test_pages_missing_or_forged_csrf_gets_a_400_page_and_changes_nothing(
    app: Flask, engine: sa.Engine, portfolio: Portfolio, token: str | None
) -> None:
    client = sign_in(app.test_client(), portfolio.emails["csm"])
    form = {"reason": "should not land"} | ({"csrf_token": token} if token else {})
    response = client.post(f"/accounts/{portfolio.own_account}/pin", data=form)
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "nothing was changed" in response.get_data(as_text=True)
    assert _pins(engine, portfolio.own_account) == 0


def test_pages_invalid_form_is_shown_again_with_messages_and_input(
    app: Flask, engine: sa.Engine, portfolio: Portfolio
) -> None:
    client = sign_in(app.test_client(), portfolio.emails["csm"])
    path = f"/accounts/{portfolio.own_account}"
    past = (dt.date.today() - dt.timedelta(days=3)).isoformat()
    response = client.post(f"{path}/override", data={"band": "good", "reason": "kept text", "expires_at": past,
                                                     "csrf_token": csrf_token(client, path)})  # fmt: skip
    text = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Must be in the future." in text and 'value="kept text"' in text and f'value="{past}"' in text
    blank = client.post(f"{path}/pin", data={"reason": "   ", "csrf_token": csrf_token(client, path)})
    assert blank.status_code == 422 and "Must not be blank." in blank.get_data(as_text=True)
    assert _pins(engine, portfolio.own_account) == 0
    bad_filter = client.get("/watchlist?renewal_within_days=soon&name=acme")
    assert bad_filter.status_code == 422
    assert "Not a valid integer." in bad_filter.get_data(as_text=True)
    assert 'value="soon"' in bad_filter.get_data(as_text=True)


def test_pages_unknown_account_is_a_404_page(app: Flask, portfolio: Portfolio) -> None:
    client = sign_in(app.test_client(), portfolio.emails["admin"])
    response = client.get("/accounts/987654")
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "Account 987654 does not exist." in response.get_data(as_text=True)
    # An id too large for a database integer matches no route: still a page, and the API still JSON.
    for path in ("/accounts/99999999999", "/no-such-page"):
        missing = client.get(path)
        assert missing.status_code == 404 and missing.mimetype == "text/html"
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.json == {"code": 404, "status": "Not Found", "message": api.json["message"]}


def test_pages_demo_users_can_sign_in(app: Flask, engine: sa.Engine, portfolio: Portfolio) -> None:
    result = app.test_cli_runner().invoke(args=["demo", "users", "--password", "demo-password-1"])
    assert result.exit_code == 0, result.output
    assert "Sign in as admin@example.com (admin), cs-manager@example.com (manager)" in result.output
    for email in ("admin@example.com", "cs-manager@example.com", portfolio.csm_owner):
        client = app.test_client()
        token = csrf_token(client)
        answer = client.post("/sign-in", data={"email": email, "password": "demo-password-1", "csrf_token": token})
        assert answer.status_code == 302, email


def test_pages_watchlist_searches_by_name_and_shows_totals_and_sparklines(
    app: Flask, engine: sa.Engine, portfolio: Portfolio
) -> None:
    client = sign_in(app.test_client(), portfolio.emails["admin"])
    page = client.get("/watchlist?scope=all&sort=score").get_data(as_text=True)
    names = re.findall(r'<a href="/accounts/\d+">([^<]+)</a>', page)
    assert names, "the demo portfolio has accounts at risk"
    total = int(re.search(r'id="totals"><strong>(\d+)</strong>', page).group(1))  # type: ignore[union-attr]
    assert total >= len(names) and '<svg class="spark' in page
    word = names[0].split()[0]
    found = client.get(f"/watchlist?scope=all&name={word.lower()}").get_data(as_text=True)
    listed = re.findall(r'<a href="/accounts/\d+">([^<]+)</a>', found)
    assert listed and all(word.lower() in n.lower() for n in listed)


def test_pages_watchlist_is_kept_per_user_with_each_session_s_token_and_dropped_on_a_change(
    app: Flask, engine: sa.Engine, portfolio: Portfolio
) -> None:
    """The rendered page is kept under the JSON page's stamp (PostgreSQL): a repeat is a cache hit,
    each session gets its own CSRF token in it (and the forms take it), another user gets their own
    page, and a pin is on the next answer."""
    admin, other = (sign_in(app.test_client(), portfolio.emails["admin"]) for _ in range(2))
    csm = sign_in(app.test_client(), portfolio.emails["csm"])
    path = "/watchlist?scope=all&sort=score"
    first = admin.get(path).get_data(as_text=True)
    cache = app.extensions.get("watchlist_cache")
    hits = cache.hits if cache is not None else 0
    again = admin.get(path).get_data(as_text=True)
    if engine.dialect.name == "postgresql":
        assert cache is not None and cache.hits == hits + 1, "the repeat is served from the page cache"
    # The same page but for the token (signed with the time: each request's own).
    assert _untokened(again) == _untokened(first) and "@@csrf@@" not in again
    theirs = other.get(path).get_data(as_text=True)
    # The second admin session is served the page the first one filled, with its own token in it:
    # the first session's token is refused to it, the token in its page is taken (below).
    refused = re.search(r'name="csrf_token" value="([^"]+)"', first).group(1)  # type: ignore[union-attr]
    assert other.post("/accounts/1/unpin", data={"csrf_token": refused}).status_code == 400
    assert "(csm)" in csm.get(path).get_data(as_text=True) and "(admin)" in theirs
    account = int(re.findall(r'<a href="/accounts/(\d+)">', theirs)[0])
    token = re.search(r'name="csrf_token" value="([^"]+)"', theirs).group(1)  # type: ignore[union-attr]
    pinned = other.post(f"/accounts/{account}/pin", data={"reason": "kept page test", "csrf_token": token,
                                                           "return_to": path})  # fmt: skip
    assert pinned.status_code == 302 and pinned.headers["Location"] == path
    assert "kept page test" in admin.get(path).get_data(as_text=True), "the change log drops the kept page"


def _untokened(page: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]+"', "", page)


#: One no-op statement per table of the account page's own change log (migration 0018): a
#: statement-level trigger records it all the same.
ACCOUNT_PAGE_NO_OP_WRITES = {
    "health_scores": "UPDATE health_scores SET score = score WHERE false",
    "score_calibrations": "DELETE FROM score_calibrations WHERE false",
    "events": "DELETE FROM events WHERE false",
    "alerts": "UPDATE alerts SET status = status WHERE false",
    "daily_usage": "DELETE FROM daily_usage WHERE false",
    "license_snapshots": "DELETE FROM license_snapshots WHERE false",
    "support_tickets": "DELETE FROM support_tickets WHERE false",
    "feedback": "DELETE FROM feedback WHERE false",
}


def test_pages_account_page_is_kept_per_user_and_dropped_on_any_write_to_what_it_reads(
    app: Flask, engine: sa.Engine, portfolio: Portfolio
) -> None:
    """PostgreSQL: a repeat of the account page is served from the kept page, with each session's
    own CSRF token in it; another user gets their own; a write to any table the page reads (both
    change logs: 0012's and 0018's) drops it, and a pin shows on the next answer."""
    from tests.api.test_watchlist_api import NO_OP_WRITES

    path = f"/accounts/{portfolio.own_account}"
    admin, other = (sign_in(app.test_client(), portfolio.emails["admin"]) for _ in range(2))
    first = admin.get(path).get_data(as_text=True)
    cache = app.extensions.get("account_page_cache")
    if engine.dialect.name != "postgresql":
        assert cache is None  # no snapshots to compare: never kept
        return
    assert set(ACCOUNT_PAGE_NO_OP_WRITES) == set(_migration("0018_account_page_changes").TABLES)
    hits, misses = cache.hits, cache.misses
    theirs = other.get(path).get_data(as_text=True)
    assert (cache.hits, cache.misses) == (hits + 1, misses) and _untokened(theirs) == _untokened(first)
    assert "@@csrf@@" not in theirs
    refused = re.search(r'name="csrf_token" value="([^"]+)"', first).group(1)  # type: ignore[union-attr]
    assert other.post(f"{path}/unpin", data={"csrf_token": refused}).status_code == 400
    csm = sign_in(app.test_client(), portfolio.emails["csm"])
    assert "(csm)" in csm.get(path).get_data(as_text=True) and cache.misses == misses + 1, "their own page"
    for table, statement in sorted({**NO_OP_WRITES, **ACCOUNT_PAGE_NO_OP_WRITES}.items()):
        admin.get(path)
        hits, misses = cache.hits, cache.misses
        assert admin.get(path).status_code == 200 and cache.hits == hits + 1, table
        with engine.begin() as conn:  # another connection, as another worker or the scheduler would write
            conn.execute(sa.text(statement))
        assert admin.get(path).status_code == 200 and cache.misses == misses + 1, table
    token = re.search(r'name="csrf_token" value="([^"]+)"', theirs).group(1)  # type: ignore[union-attr]
    assert other.post(f"{path}/pin", data={"reason": "kept account page", "csrf_token": token}).status_code == 302
    assert "Pinned: kept account page" in admin.get(path).get_data(as_text=True)


def _migration(name: str) -> Any:
    path = Path(__file__).resolve().parents[2] / "migrations" / "versions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pages_account_page_pins_completes_tasks_and_explains_a_change(
    app: Flask, engine: sa.Engine, portfolio: Portfolio
) -> None:
    client = sign_in(app.test_client(), portfolio.emails["csm"])
    path = f"/accounts/{portfolio.own_account}"
    page = client.get(path).get_data(as_text=True)
    assert 'id="history-chart"' in page and "Why did it change?" in page and "Drivers" in page
    response = client.post(f"{path}/pin", data={"reason": "renewal at risk", "csrf_token": csrf_token(client, path)})
    assert response.status_code == 302 and _pins(engine, portfolio.own_account) == 1
    assert "Pinned: renewal at risk" in client.get(path).get_data(as_text=True)
    with sessionmaker(bind=engine).begin() as session:
        task_id = session.scalar(
            sa.select(Task.id)
            .join(Account, Account.id == Task.account_id)
            .where(Task.status == TaskStatus.OPEN, Account.owner == portfolio.csm_owner)
            .limit(1)
        )
    if task_id is not None:
        done = client.post(f"/tasks/{task_id}", data={"status": "done", "csrf_token": csrf_token(client, path)})
        assert done.status_code == 302
        with sessionmaker(bind=engine).begin() as session:
            assert session.get(Task, task_id).status is TaskStatus.DONE  # type: ignore[union-attr]
    day = dt.date.today()
    explained = client.get(f"{path}?from={(day - dt.timedelta(days=5)).isoformat()}&to={day.isoformat()}")
    assert "data " in explained.get_data(as_text=True) and explained.status_code == 200
    wrong = client.get(f"{path}?from={day.isoformat()}&to={(day - dt.timedelta(days=5)).isoformat()}")
    assert "must not be after" in wrong.get_data(as_text=True)


def test_pages_invite_sets_a_password_once_and_a_reset_ends_older_sessions(
    app: Flask, engine: sa.Engine, portfolio: Portfolio
) -> None:
    admin = sign_in(app.test_client(), portfolio.emails["admin"])
    response = admin.post("/admin/users", data={"name": "Nia New", "email": "nia@example.com", "role": "csm",
                                                "manager": "maya@example.com",
                                                "csrf_token": csrf_token(admin, "/admin/users")})  # fmt: skip
    link = re.search(r'id="one-time-link">[^<]*(/set-password\?token=[^<]+)</code>', response.get_data(as_text=True))
    assert response.status_code == 200 and link
    path = link.group(1)
    invitee = app.test_client()
    token = csrf_token(invitee, path)
    short = invitee.post("/set-password", data={"token": path.split("=", 1)[1], "password": "short", "confirm": "short",
                                                "csrf_token": token})  # fmt: skip
    assert short.status_code == 422 and "at least 10 characters" in short.get_data(as_text=True)
    done = invitee.post("/set-password", data={"token": path.split("=", 1)[1], "password": PASSWORD,
                                               "confirm": PASSWORD, "csrf_token": token})  # fmt: skip
    assert done.status_code == 302 and invitee.get("/my-work").status_code == 200
    assert app.test_client().get(path).status_code == 404  # one time only
    # A reset link: the old password's sessions end when the new one is set.
    reset = admin.post("/admin/users/reset", data={"who": "nia@example.com",
                                                   "csrf_token": csrf_token(admin, "/admin/users")})  # fmt: skip
    path = re.search(r"(/set-password\?token=[^<]+)</code>", reset.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    other = app.test_client()
    other.post("/set-password", data={"token": path.split("=", 1)[1], "password": "another good password",
                                      "confirm": "another good password", "csrf_token": csrf_token(other, path)})  # fmt: skip
    time.sleep(1.1)  # stamps are whole seconds
    assert invitee.get("/my-work").status_code == 302
    duplicate = admin.post("/admin/users", data={"name": "Nia Two", "email": "nia@example.com", "role": "csm",
                                                 "csrf_token": csrf_token(admin, "/admin/users")})  # fmt: skip
    assert duplicate.status_code == 409 and 'value="Nia Two"' in duplicate.get_data(as_text=True)


def test_pages_cli_sets_the_first_admins_password(app: Flask, engine: sa.Engine) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "set-password", "root@example.com", "--role", "admin",
                                 "--password", PASSWORD])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sign_in(app.test_client(), "root@example.com").get("/admin/users").status_code == 200
    weak = runner.invoke(args=["users", "set-password", "root@example.com", "--password", "short"])
    assert weak.exit_code == 1 and "too short" in weak.output
    unknown = runner.invoke(args=["users", "set-password", "nobody@example.com", "--password", PASSWORD])
    assert unknown.exit_code == 1 and "No user" in unknown.output
    link = runner.invoke(args=["users", "reset-link", "root@example.com"])
    assert link.exit_code == 0 and "/set-password?token=" in link.output
    with sessionmaker(bind=engine).begin() as session:
        user = session.scalar(sa.select(User).where(User.email == "root@example.com"))
        assert user is not None and user.password_hash and user.password_hash.startswith("$argon2id$")


def test_pages_alert_links_open_the_pages() -> None:
    settings = AlertSettings(public_base_url="https://hs.example.com")
    assert settings.account_url(7) == "https://hs.example.com/accounts/7"


def test_pages_api_docs_use_the_vendored_swagger_ui(app: Flask) -> None:
    page = app.test_client().get("/api/v1/docs").get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/static/") for s in sources), sources
    assert "<script>" not in page  # no inline script (a CSP of 'self')
    client = app.test_client()
    for source in sources:
        response = client.get(source)
        assert response.status_code == 200
        response.close()


def test_pages_admin_changes_a_weight_previews_and_activates(
    app: Flask, engine: sa.Engine, portfolio: Portfolio
) -> None:
    admin = sign_in(app.test_client(), portfolio.emails["admin"])
    token = csrf_token(admin, "/admin/config")
    bad = admin.post("/admin/config", data={"csrf_token": token, "action": "preview", "weights.established.nps": "-2",
                                            "comment": "kept"})  # fmt: skip
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "Weights must not be negative." in text and 'value="-2"' in text
    shown = admin.post(
        "/admin/config", data={"csrf_token": token, "action": "preview", "weights.established.nps": "40"}
    )
    assert shown.status_code == 200 and 'id="auc-proposed"' in shown.get_data(as_text=True)
    done = admin.post("/admin/config", data={"csrf_token": token, "action": "activate", "weights.established.nps": "40",
                                             "comment": "more NPS"})  # fmt: skip
    assert done.status_code == 302 and "/admin/jobs/requests/" in done.headers["Location"]
    job = admin.get(done.headers["Location"]).get_data(as_text=True)
    assert 'id="job-status">queued<' in job and 'http-equiv="refresh"' in job
    config = admin.get("/admin/config").get_data(as_text=True)
    assert "version 2</strong>" in config and "Roll back to v1" in config
    rollback = admin.post("/admin/config/versions/1/activate", data={"csrf_token": csrf_token(admin, "/admin/config")})
    assert rollback.status_code == 302
    assert "version 1</strong>" in admin.get("/admin/config").get_data(as_text=True)
    # The diff of the two versions is a table: the weight and the shares of its stage.
    diff = admin.get("/admin/config?from=1&to=2").get_data(as_text=True)
    assert 'id="diff-weights-established"' in diff and "<td>nps</td>" in diff and "<pre" not in diff
    assert "nothing differs" in admin.get("/admin/config?from=1&to=1").get_data(as_text=True)


#: A new measure through the measure form: logins per day over 30 days, weighed 1 in every stage.
NEW_MEASURE = {"name": "logins_per_day_30d", "label": "Logins a day (30 days)", "group": "adoption",
               "source": "usage.logins", "aggregate": "sum", "window_days": "30", "per": "day",
               "direction": "higher_is_better", "thresholds": "0, 1, 5", "weight.onboarding": "1",
               "weight.established": "1", "weight.pre_renewal": "1"}  # fmt: skip


def test_pages_admin_adds_a_measure_previews_and_activates(app: Flask, engine: sa.Engine, portfolio: Portfolio) -> None:
    """The measure form: field-level messages in the form with what was typed kept (the form's own
    parsing, the schema's and the core's), a preview, then save and activate; editing an existing
    measure starts from its definition."""
    admin = sign_in(app.test_client(), portfolio.emails["admin"])
    token = csrf_token(admin, "/admin/config/measure")
    form = {**NEW_MEASURE, "csrf_token": token, "action": "preview"}
    # The form's parsing: thresholds that are not numbers, a weight that is not a number.
    bad = admin.post("/admin/config/measure", data={**form, "thresholds": "0, lots", "weight.established": "x"})
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422 and 'id="thresholds-error"' in text and "Numbers separated by commas" in text
    assert (
        'id="weight.established-error"' in text
        and 'value="0, lots"' in text
        and 'value="Logins a day (30 days)"' in text
    )
    # The schema's: a window out of range, shown at the window field.
    bad = admin.post("/admin/config/measure", data={**form, "window_days": "9999"})
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422 and 'id="window_days-error"' in text and 'value="9999"' in text
    assert 'aria-invalid="true" aria-describedby="window_days-error"' in text
    # The core's: an aggregate the source does not allow, shown at the aggregate field.
    bad = admin.post("/admin/config/measure", data={**form, "aggregate": "nps"})
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422 and 'id="aggregate-error"' in text, text
    shown = admin.post("/admin/config/measure", data=form)
    assert shown.status_code == 200 and 'id="auc-proposed"' in shown.get_data(as_text=True)
    done = admin.post("/admin/config/measure", data={**form, "action": "activate", "comment": "logins"})
    assert done.status_code == 302 and "/admin/jobs/requests/" in done.headers["Location"]
    config = admin.get("/admin/config").get_data(as_text=True)
    assert "version 2</strong>" in config and "logins_per_day_30d" in config
    # Editing it: the form starts from the active definition; a blank field is removed from it.
    edit = admin.get("/admin/config/measure?name=logins_per_day_30d").get_data(as_text=True)
    assert "Change measure logins_per_day_30d" in edit and 'value="0, 1, 5"' in edit and 'value="30"' in edit
    changed = admin.post("/admin/config/measure", data={**form, "action": "activate", "window_days": "14",
                                                        "per": "", "label": ""})  # fmt: skip
    assert changed.status_code == 302
    edit = admin.get("/admin/config/measure?name=logins_per_day_30d").get_data(as_text=True)
    assert 'id="window_days" name="window_days" inputmode="numeric" value="14"' in edit
    assert 'id="label" name="label" value=""' in edit and '<option value="day" selected>' not in edit
    assert admin.get("/admin/config/measure?name=no_such_measure").status_code == 404


def test_pages_admin_disables_a_user_and_revokes_a_token(app: Flask, engine: sa.Engine, portfolio: Portfolio) -> None:
    from app.auth import create_token

    admin = sign_in(app.test_client(), portfolio.emails["admin"])
    csm = sign_in(app.test_client(), portfolio.emails["csm"])
    with sessionmaker(bind=engine).begin() as session:
        csm_id = session.scalar(sa.select(User.id).where(User.email == portfolio.emails["csm"]))
        admin_id = session.scalar(sa.select(User.id).where(User.email == portfolio.emails["admin"]))
        _, token = create_token(session, "page-token-user", Role.VIEWER, description="to revoke")
    assert app.test_client().get("/api/v1/watchlist", headers=bearer(token)).status_code == 200
    form = {"csrf_token": csrf_token(admin, "/admin/users")}
    # Disabled: the CSM's session ends at once (this worker forgets), and they cannot sign in.
    assert admin.post(f"/admin/users/{csm_id}/disable", data={**form, "disabled": "true"}).status_code == 302
    assert csm.get("/watchlist").status_code == 302
    again = app.test_client()
    page = again.post("/sign-in", data={"email": portfolio.emails["csm"], "password": PASSWORD,
                                        "csrf_token": csrf_token(again)})  # fmt: skip
    assert page.status_code != 302
    assert 'aria-label="Enable ' in admin.get("/admin/users").get_data(as_text=True)
    assert admin.post(f"/admin/users/{csm_id}/disable", data={**form, "disabled": "false"}).status_code == 302
    sign_in(app.test_client(), portfolio.emails["csm"])
    # An admin does not lock themselves out; a bad value is refused with its message.
    mine = admin.post(f"/admin/users/{admin_id}/disable", data={**form, "disabled": "true"})
    assert mine.status_code == 409 and "cannot disable yourself" in mine.get_data(as_text=True)
    assert admin.post(f"/admin/users/{csm_id}/disable", data={**form, "disabled": "maybe"}).status_code == 422
    # Revoked: the API refuses the token; the page no longer offers to revoke it.
    prefix = token[:9]
    assert f'value="{prefix}"' in admin.get("/admin/users").get_data(as_text=True)
    assert admin.post("/admin/tokens/revoke", data={**form, "prefix": prefix}).status_code == 302
    assert app.test_client().get("/api/v1/watchlist", headers=bearer(token)).status_code == 401
    assert f'value="{prefix}"' not in admin.get("/admin/users").get_data(as_text=True)
    short = admin.post("/admin/tokens/revoke", data={**form, "prefix": "hs_"})
    assert short.status_code == 422 and "first 7 characters" in short.get_data(as_text=True)


def test_pages_admin_replaces_the_routing_and_retries_the_quarantine(app: Flask, portfolio: Portfolio) -> None:
    import json

    admin = sign_in(app.test_client(), portfolio.emails["admin"])
    current = admin.get("/api/v1/alerts/routing", headers=bearer(_admin_token(app)))
    body = current.get_json()
    form = {"csrf_token": csrf_token(admin, "/admin/routing"), "version": str(body["version"])}
    broken = admin.post("/admin/routing", data={**form, "document": '{"rules": [', "comment": "typo"})
    text = broken.get_data(as_text=True)
    assert broken.status_code == 422 and "Not valid JSON" in text and "{&#34;rules&#34;: [" in text
    document = json.dumps(body["document"])
    saved = admin.post("/admin/routing", data={**form, "document": document, "comment": "same, from the page"})
    assert saved.status_code == 302
    page = admin.get("/admin/routing").get_data(as_text=True)
    assert f"Version {body['version'] + 1} by" in page and "same, from the page" in page
    stale = admin.post("/admin/routing", data={**form, "document": document})
    assert stale.status_code == 409 and "changed meanwhile" in stale.get_data(as_text=True)
    retried = admin.post("/admin/quarantine/retry", data={"csrf_token": form["csrf_token"], "source": "crm"})
    assert retried.status_code == 200 and 'id="retry-summary">Retried 0' in retried.get_data(as_text=True)


def _admin_token(app: Flask) -> str:
    from app.auth import create_token
    from app.db import get_session

    with app.app_context():
        session = get_session()
        with session.begin():
            _, token = create_token(session, "page-routing-admin", Role.ADMIN, description="routing test")
    return token


def test_pages_team_page_shows_arr_by_band_and_moves_into_poor(
    app: Flask, engine: sa.Engine, portfolio: Portfolio
) -> None:
    from app.models import HealthScore
    from app.services.accounts import arr_by_band, latest_scored_day, moved_into_poor
    from scoring.bands import Band

    manager = sign_in(app.test_client(), portfolio.emails["manager"])
    page = manager.get("/team").get_data(as_text=True)
    assert 'id="arr-by-band"' in page and 'id="moved-into-poor"' in page
    digest = manager.get("/team/digest").get_data(as_text=True)
    assert "Digest for maya@example.com" in digest and 'id="digest-at-risk"' in digest
    with sessionmaker(bind=engine).begin() as session:
        day = latest_scored_day(session)
        assert day is not None
        team = (portfolio.csm_owner,)
        figures = arr_by_band(session, owners=team, day=day)
        rows = session.execute(
            sa.select(HealthScore.band, Account.arr)
            .join(Account, Account.id == HealthScore.account_id)
            .where(HealthScore.day == day, Account.owner == portfolio.csm_owner)
        ).all()
        for band in Band:
            mine = [arr for b, arr in rows if b is band]
            assert figures[band.value] == {"accounts": len(mine), "arr": pytest.approx(sum(mine))}
        since = day - dt.timedelta(days=7)
        moved = moved_into_poor(session, owners=None, since=since, day=day)
        for item in moved:
            bands = dict(session.execute(sa.select(HealthScore.day, HealthScore.band)
                                         .where(HealthScore.account_id == item["id"],
                                                HealthScore.day.in_([since, day]))).all())  # fmt: skip
            assert bands[day] is Band.POOR and bands[since] is not Band.POOR
