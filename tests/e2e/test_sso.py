"""Single sign-on against a real OpenID Connect provider that the test starts: node-oidc-provider
(OpenID Certified, from npm; tests/support/oidc), on 127.0.0.1, with a throwaway client and
people. Headless Chromium walks the flow: the app's sign-in page, the provider's login and consent
pages, back to the app (the code exchanged, the ID token's signature, issuer, audience and nonce
checked by Authlib), signed in as the user whose verified email the provider gave.

Skipped, saying why, only when a tool is missing: node, npm (to install the provider's package
into tests/support/oidc/node_modules the first time) or Chromium.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import sessionmaker
from werkzeug.serving import make_server

from app.models import Role, User
from app.services.users import invite_user

pytestmark = [pytest.mark.e2e, pytest.mark.db]

ROOT = Path(__file__).resolve().parents[2]
PROVIDER = ROOT / "tests" / "support" / "oidc"
CHROMIUM = os.environ.get("HS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SECRET = "throwaway-client-secret-for-tests"
#: The provider's people (login -> claims): who the test signs in as at the provider.
PEOPLE = {
    "maya": {"email": "Maya@Example.com", "email_verified": True},  # a manager invited here, no password
    "stranger": {"email": "stranger@example.com", "email_verified": True},  # no user here
    "unverified": {"email": "admin@example.com", "email_verified": False},  # an admin's email, not vouched for
    "gone": {"email": "gone@example.com", "email_verified": True},  # a disabled user
}

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _provider_installed() -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        pytest.skip("no node binary (apt-get install -y nodejs): the test OpenID provider runs on it")
    if not (PROVIDER / "node_modules" / "oidc-provider").exists():
        if npm is None:
            pytest.skip("no npm to install the test OpenID provider (tests/support/oidc: npm ci)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PROVIDER, check=True, capture_output=True,
                       timeout=300)  # fmt: skip


@pytest.fixture
def sso_site(app: Flask, engine: sa.Engine, backend: str) -> Iterator[str]:
    if backend != "sqlite":
        pytest.skip("the SSO flow runs once, on SQLite (the pages' services are the same on both databases)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium binary at {CHROMIUM} (apt-get install -y chromium; .ci/run does)")
    _provider_installed()
    now = dt.datetime.now(dt.UTC)
    with sessionmaker(bind=engine).begin() as session:
        invite_user(session, name="maya", email="maya@example.com", role=Role.MANAGER, manager=None, now=now, hours=1)
        invite_user(session, name="admin", email="admin@example.com", role=Role.ADMIN, manager=None, now=now, hours=1)
        gone, _ = invite_user(session, name="gone", email="gone@example.com", role=Role.CSM, manager=None, now=now,
                              hours=1)  # fmt: skip
        gone.disabled = True
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    port = _free_port()
    env = {**os.environ, "HS_OIDC_PORT": str(port), "HS_OIDC_CLIENT_ID": "healthscore", "HS_OIDC_CLIENT_SECRET": SECRET,
           "HS_OIDC_REDIRECT_URI": f"{base}/sign-in/sso/callback", "HS_OIDC_PEOPLE": json.dumps(PEOPLE),
           "HS_OIDC_POST_LOGOUT_URI": f"{base}/sign-in"}  # fmt: skip
    provider = subprocess.Popen(["node", "provider.mjs"], cwd=PROVIDER, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    try:
        assert provider.stdout is not None
        for line in provider.stdout:
            if line.startswith("ready "):
                break
        else:
            pytest.fail(f"the OpenID provider did not start (exit {provider.wait()})")
        threading.Thread(target=provider.stdout.read, daemon=True).start()  # keep its pipe drained
        # The provider sends people back to PUBLIC_BASE_URL + /sign-in/sso/callback.
        app.config.update(OIDC_ISSUER=f"http://127.0.0.1:{port}", OIDC_CLIENT_ID="healthscore",
                          OIDC_CLIENT_SECRET=SECRET, PUBLIC_BASE_URL=base)  # fmt: skip
        thread.start()
        yield base
    finally:
        server.shutdown()
        if thread.is_alive():
            thread.join()
        provider.terminate()
        provider.wait(timeout=10)
        if provider.stdout is not None:
            provider.stdout.close()


@pytest.fixture
def browser(sso_site: str) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def _through_provider(browser: Any, base: str, login: str, start: str = "/team") -> Any:
    """Open ``start`` signed out, choose SSO on the sign-in page, sign in at the provider as
    ``login`` and consent; the page the app answers at the end."""
    page = browser.new_context().new_page()
    page.goto(base + start)
    assert "/sign-in" in page.url
    page.click("#sso")
    page.wait_for_url("http://127.0.0.1:*/interaction/*")
    assert not page.url.startswith(base), "the provider's own login page"
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "anything")
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    if not page.url.startswith(base):  # the consent page (first time this client asks)
        page.click("button[type=submit]")
        page.wait_for_url(base + "/**")
    page.wait_for_load_state("networkidle")
    return page


def test_sso_signs_in_the_user_with_the_verified_email(
    app: Flask, browser: Any, sso_site: str, engine: sa.Engine
) -> None:
    base = sso_site
    page = _through_provider(browser, base, "maya")
    assert page.url == base + "/team", page.inner_text("main")
    assert "maya (manager)" in page.inner_text("header")
    # The session is the app's own (cookie): the next page needs no provider.
    page.goto(base + "/watchlist")
    assert page.url == base + "/watchlist" and "maya (manager)" in page.inner_text("header")
    # Disabling the user ends the SSO session too (this worker forgets at once).
    with sessionmaker(bind=engine).begin() as session:
        session.execute(sa.update(User).where(User.name == "maya").values(disabled=True))
    from app.web.access import forget_users

    with app.app_context():
        forget_users()
    page.goto(base + "/watchlist")
    assert "/sign-in" in page.url


def test_sso_sign_out_ends_the_provider_session_too(browser: Any, sso_site: str) -> None:
    """Signing out after an SSO sign-in goes through the provider's end-session page (RP-initiated
    logout, its discovery document's ``end_session_endpoint``) and back to the sign-in page; the
    next SSO sign-in asks the provider's login again, where its live session would have let the
    person straight through."""
    base = sso_site
    page = _through_provider(browser, base, "maya")
    assert page.url == base + "/team"
    page.click("form.signout button[type=submit]")
    # (its page imports a web font: "load" may never come without internet)
    page.wait_for_url("http://127.0.0.1:*/session/end**", wait_until="commit")
    page.wait_for_selector("button[name=logout]")
    assert not page.url.startswith(base), "the provider's end-session page"
    page.click("button[name=logout]")
    page.wait_for_url(base + "/sign-in")
    page.goto(base + "/team")
    assert "/sign-in" in page.url, "the app's session ended"
    page.click("#sso")
    page.wait_for_url("http://127.0.0.1:*/interaction/*")
    assert page.locator("input[name=login]").count() == 1, "the provider's session ended: its login again"


def test_sso_refuses_unknown_unverified_and_disabled_people(browser: Any, sso_site: str) -> None:
    base = sso_site
    for login in ("stranger", "unverified", "gone"):
        page = _through_provider(browser, base, login)
        assert "/sign-in/sso/callback" in page.url, login
        assert "no user here with that verified email" in page.inner_text("main"), login
        page.goto(base + "/watchlist")
        assert "/sign-in" in page.url, f"{login} is not signed in"


def test_sso_refuses_a_forged_callback(app: Flask, sso_site: str) -> None:
    """A callback without the state this browser was given signs nobody in."""
    client = app.test_client()
    answer = client.get("/sign-in/sso/callback?code=made-up&state=made-up")
    assert answer.status_code == 400 and "failed" in answer.get_data(as_text=True)
    assert client.get("/watchlist").status_code == 302
