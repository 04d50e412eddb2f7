"""The main flows in a real browser: headless Debian Chromium driven by Playwright, against the app
served on 127.0.0.1 by a thread of this process; the vendored axe-core checks every page.

Skipped, saying why, only when there is no Chromium binary (``.ci/run`` installs Debian's
``chromium``). ``HS_SCREENSHOTS=1`` writes each page's screenshot to docs/screenshots/ (the
README shows them). The flows run on SQLite only: the pages' services are the same on both
databases, and tests/api/test_pages.py runs every page on both.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import sessionmaker
from werkzeug.serving import make_server

from app.models import Account, Alert, Task, TaskStatus, WatchlistPin
from tests.support.web import PASSWORD, Portfolio, make_portfolio

pytestmark = [pytest.mark.e2e, pytest.mark.db]

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "app" / "static" / "vendor" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("HS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
)


@pytest.fixture
def site(app: Flask, engine: sa.Engine, backend: str) -> Iterator[tuple[str, Portfolio]]:
    if backend != "sqlite":
        pytest.skip("the browser flows run once, on SQLite (tests/api/test_pages.py covers both databases)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium binary at {CHROMIUM} (apt-get install -y chromium; .ci/run does)")
    portfolio = make_portfolio(engine, accounts=30, history_days=31)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", portfolio
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture
def browser(site: tuple[str, Portfolio]) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


class Visit:
    """One person's browser tab: every request it makes must stay on the site, and each page it
    opens passes axe (no serious or critical violation) and may be photographed."""

    def __init__(self, browser: Any, base: str) -> None:
        self.base = base
        self.page = browser.new_page(viewport={"width": 1360, "height": 900})
        self.foreign: list[str] = []
        self.page.on("request", self._request)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _request(self, request: Any) -> None:
        if not request.url.startswith(self.base) and not request.url.startswith("data:"):
            self.foreign.append(request.url)

    def open(self, path: str) -> Any:
        response = self.page.goto(self.base + path)
        self.page.wait_for_load_state("networkidle")
        return response

    def sign_in(self, email: str, next_path: str = "/watchlist") -> None:
        self.open(next_path)
        self.page.fill("#email", email)
        self.page.fill("#password", PASSWORD)
        self.page.click("main button[type=submit]")
        self.page.wait_for_load_state("networkidle")

    def keep_page(self) -> None:
        """Mark this page's window: a full load forgets the mark, an htmx swap keeps it."""
        self.page.evaluate("() => { window.__kept = true; }")

    def same_page(self) -> bool:
        return bool(self.page.evaluate("() => window.__kept === true"))

    def check(self, name: str) -> None:
        """axe on the page as it is, then the screenshot (when asked for)."""
        # From this origin, as any page script: the pages' CSP (script-src 'self') refuses inline code.
        self.page.add_script_tag(url="/static/vendor/axe-core/axe.min.js")
        result = self.page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert not bad, f"axe on {name}: {bad}"
        assert not self.foreign, f"{name} requested another origin: {self.foreign}"
        assert not self.errors, f"{name} raised in the browser: {self.errors}"
        if os.environ.get("HS_SCREENSHOTS") == "1":
            SHOTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(SHOTS / f"{name}.png"))


def _work_account(engine: sa.Engine, owner: str) -> tuple[int, int, int]:
    """An account of ``owner`` with an open task and an alert waiting for acknowledgement."""
    with sessionmaker(bind=engine).begin() as session:
        row = session.execute(
            sa.select(Account.id, sa.func.min(Task.id), sa.func.min(Alert.id))
            .join(Task, Task.account_id == Account.id)
            .join(Alert, Alert.account_id == Account.id)
            .where(
                Account.owner == owner,
                Task.status == TaskStatus.OPEN,
                Alert.requires_ack,
                Alert.acknowledged_at.is_(None),
            )
            .group_by(Account.id)
            .limit(1)
        ).first()
    assert row is not None, "the demo portfolio gives the CSM an account with a task and an alert"
    return row[0], row[1], row[2]


def test_browser_csm_works_an_account(browser: Any, site: tuple[str, Portfolio], engine: sa.Engine) -> None:
    """Sign in, open the watchlist, open an account, pin it with a reason, complete a task,
    acknowledge an alert; and be refused another book's account page."""
    base, portfolio = site
    account_id, task_id, alert_id = _work_account(engine, portfolio.csm_owner)
    visit = Visit(browser, base)
    visit.open("/sign-in")
    visit.check("sign-in")
    visit.sign_in(portfolio.emails["csm"])
    assert visit.page.url.endswith("/watchlist")
    visit.check("watchlist")
    # htmx: a filter updates the table in place (the page is not loaded again) and the address.
    visit.keep_page()
    visit.page.select_option("#f-band", "poor")
    visit.page.wait_for_url("**/watchlist?*band=poor*")
    visit.page.wait_for_load_state("networkidle")
    bands = visit.page.locator("#results tbody td:nth-child(2) .band").all_inner_texts()
    assert bands and set(bands) == {"poor"}, bands
    assert visit.same_page(), "the filter reloaded the page"
    # The name search runs while typing (after a pause), in place too.
    term = visit.page.locator("#results tbody td:first-child a").first.inner_text().split()[0][:4].lower()
    visit.page.locator("#f-name").press_sequentially(term, delay=50)
    visit.page.wait_for_url(f"**/watchlist?*name={term}*")
    visit.page.wait_for_load_state("networkidle")
    names = visit.page.locator("#results tbody td:first-child a").all_inner_texts()
    assert names and all(term in n.lower() for n in names), (term, names)
    assert visit.same_page(), "the search reloaded the page"
    visit.check("watchlist-filtered")
    visit.open(f"/accounts/{account_id}")
    assert visit.page.locator("#history-chart canvas").count() == 1  # uPlot drew the year
    visit.check("account")
    # Pin, complete a task and acknowledge an alert in place (htmx), the chart never drawn again.
    visit.keep_page()
    visit.page.fill("#pin-reason", "Renewal call next week")
    visit.page.click("#pin-h ~ form button[type=submit]")
    visit.page.wait_for_selector("#pin >> text=Pinned: Renewal call next week")
    visit.page.click(f"form[action='/tasks/{task_id}'] button")
    visit.page.wait_for_selector(f"form[action='/tasks/{task_id}'] >> text=Reopen")
    visit.page.click(f"form[action='/alerts/{alert_id}/acknowledge'] button")
    visit.page.wait_for_selector(f"form[action='/alerts/{alert_id}/acknowledge']", state="detached")
    assert visit.same_page(), "a form reloaded the page"
    visit.check("account-after")
    with sessionmaker(bind=engine).begin() as session:
        assert session.get(Task, task_id).status is TaskStatus.DONE  # type: ignore[union-attr]
        assert session.get(Alert, alert_id).acknowledged_at is not None  # type: ignore[union-attr]
        pins = session.scalar(sa.select(sa.func.count()).where(WatchlistPin.account_id == account_id))
        assert pins == 1
    visit.open("/my-work")
    visit.check("my-work")
    refused = visit.open(f"/accounts/{portfolio.other_account}")
    assert refused.status == 403 and "is not in your book" in visit.page.content()
    visit.check("refused")


def test_browser_manager_team_page(browser: Any, site: tuple[str, Portfolio]) -> None:
    base, portfolio = site
    visit = Visit(browser, base)
    visit.sign_in(portfolio.emails["manager"], next_path="/team")
    assert visit.page.url.endswith("/team")
    assert "My team's book" in visit.page.content()
    visit.check("team")
    visit.page.click("text=Today's digest as a page")
    visit.page.wait_for_load_state("networkidle")
    assert "Digest for" in visit.page.content()
    visit.check("digest")


def test_browser_admin_pages_and_api_docs_offline(browser: Any, site: tuple[str, Portfolio]) -> None:
    base, portfolio = site
    visit = Visit(browser, base)
    visit.sign_in(portfolio.emails["admin"], next_path="/admin/users")
    visit.page.fill("#i-name", "Nia New")
    visit.page.fill("#i-email", "nia@example.com")
    visit.page.click("#invite-h ~ form button[type=submit]")
    visit.page.wait_for_load_state("networkidle")
    assert "/set-password?token=" in visit.page.inner_text("#one-time-link")
    visit.check("users")
    # A weight changed, previewed (band moves, backtest side by side), then activated.
    visit.open("/admin/config")
    visit.page.fill("[id='weights.established.nps']", "40")
    visit.page.click("button[value=preview]")
    visit.page.wait_for_load_state("networkidle")
    assert visit.page.locator("#auc-proposed").count() == 1
    assert visit.page.input_value("[id='weights.established.nps']") == "40"
    visit.check("admin-config")
    visit.page.fill("#comment", "NPS matters more")
    visit.page.click("button[value=activate]")
    visit.page.wait_for_load_state("domcontentloaded")
    assert "/admin/jobs/requests/" in visit.page.url
    assert visit.page.inner_text("#job-status") in ("queued", "running", "succeeded")
    visit.open("/admin/config")
    assert "version 2" in visit.page.inner_text("main")
    # The rest of the console: the diff as tables, routing, job runs, quarantine (axe on each).
    visit.open("/admin/config?from=1&to=2")
    assert visit.page.locator("#diff-weights-established").count() == 1
    visit.page.locator("#diff").scroll_into_view_if_needed()  # the screenshot shows the diff
    visit.check("admin-config-diff")
    visit.open("/admin/routing")
    assert visit.page.locator("#routing-document").count() == 1
    visit.check("admin-routing")
    visit.open("/admin/jobs")
    visit.check("admin-jobs")
    visit.open("/admin/quarantine")
    visit.page.click("form[action='/admin/quarantine/retry'] button")
    visit.page.wait_for_load_state("networkidle")
    assert "Retried 0" in visit.page.inner_text("#retry-summary")
    visit.check("admin-quarantine")
    visit.open("/api/v1/docs")
    visit.page.wait_for_selector(".swagger-ui .info")
    assert not visit.foreign  # Swagger UI from the vendored files, nothing from a CDN
    visit.page.screenshot(path=str(SHOTS / "api-docs.png")) if os.environ.get("HS_SCREENSHOTS") == "1" else None


def test_browser_admin_adds_a_measure(browser: Any, site: tuple[str, Portfolio]) -> None:
    """The measure form: from the config page, a new measure of the measure language with a window
    out of range is refused at its field with what was typed kept, then previewed and activated;
    axe on the form with its messages and on the preview."""
    base, portfolio = site
    visit = Visit(browser, base)
    visit.sign_in(portfolio.emails["admin"], next_path="/admin/config")
    visit.page.click("text=Add a measure")
    visit.page.wait_for_load_state("networkidle")
    assert visit.page.url == base + "/admin/config/measure"
    fields = {"#name": "logins_per_day_30d", "#label": "Logins a day (30 days)", "#source": "usage.logins",
              "#window_days": "9999", "#thresholds": "0, 1, 5", "[id='weight.established']": "2"}  # fmt: skip
    for selector, value in fields.items():
        visit.page.fill(selector, value)
    for selector, value in {"#group": "adoption", "#aggregate": "sum", "#per": "day",
                            "#direction": "higher_is_better"}.items():  # fmt: skip
        visit.page.select_option(selector, value)
    visit.page.click("button[value=preview]")
    visit.page.wait_for_load_state("networkidle")
    assert visit.page.get_attribute("#window_days", "aria-invalid") == "true"
    assert visit.page.locator("#window_days-error").count() == 1
    assert visit.page.input_value("#window_days") == "9999" and visit.page.input_value("#per") == "day"
    visit.check("admin-measure-refused")
    visit.page.fill("#window_days", "30")
    visit.page.click("button[value=preview]")
    visit.page.wait_for_load_state("networkidle")
    assert visit.page.locator("#auc-proposed").count() == 1
    assert visit.page.input_value("#name") == "logins_per_day_30d"
    visit.check("admin-measure")
    visit.page.fill("#comment", "logins a day")
    visit.page.click("button[value=activate]")
    visit.page.wait_for_load_state("domcontentloaded")
    assert "/admin/jobs/requests/" in visit.page.url
    visit.open("/admin/config/measure?name=logins_per_day_30d")
    assert visit.page.input_value("#window_days") == "30" and visit.page.input_value("#source") == "usage.logins"


def test_browser_forms_work_without_a_script(browser: Any, site: tuple[str, Portfolio], engine: sa.Engine) -> None:
    """Without JavaScript (no htmx): the filters are a GET form, pin and task are POSTs and redirects."""
    base, portfolio = site
    account_id, task_id, _ = _work_account(engine, portfolio.csm_owner)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(base + "/watchlist")
        page.fill("#email", portfolio.emails["csm"])
        page.fill("#password", PASSWORD)
        page.click("main button[type=submit]")
        page.select_option("#f-band", "poor")
        page.click("form.filters button[type=submit]")
        assert "band=poor" in page.url
        assert set(page.locator("#results tbody td:nth-child(2) .band").all_inner_texts()) <= {"poor"}
        page.goto(f"{base}/accounts/{account_id}")
        page.fill("#pin-reason", "No script needed")
        page.click("#pin-h ~ form button[type=submit]")
        assert page.url.endswith(f"/accounts/{account_id}") and "Pinned: No script needed" in page.content()
        page.click(f"form[action='/tasks/{task_id}'] button")
        assert page.url.endswith(f"/accounts/{account_id}")
    finally:
        context.close()
    with sessionmaker(bind=engine).begin() as session:
        assert session.get(Task, task_id).status is TaskStatus.DONE  # type: ignore[union-attr]
