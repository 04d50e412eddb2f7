"""Alerts: the outbox (what was sent, to whom, what is retrying or dead), retry and acknowledge,
the routing document, and the signed acknowledge link that messages carry (outside /api/v1:
it authenticates by its signature, not by a token)."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from flask import Blueprint as FlaskBlueprint
from flask import current_app, request
from flask_smorest import Blueprint
from marshmallow import RAISE

from alerts.signing import InvalidAckToken, verify_ack
from app.api.body import body_refusals, json_body_doc, load_json_body, load_with
from app.auth import ADMIN, READ, WORK, access, actor_name, book, current_principal, require_in_book
from app.db import get_session
from app.errors import Conflict, NotFound
from app.schemas.alerts import AlertPageSchema, AlertQuerySchema, AlertSchema, RoutingSchema, RoutingUpdateSchema
from app.schemas.plays import NoQuerySchema
from app.services.alerts.admin import (
    AlertFilters,
    acknowledge_alert,
    alert_account,
    get_alert,
    get_routing,
    list_alerts,
    retry_alert,
    save_routing,
)
from app.services.alerts.settings import AlertSettings

bp = Blueprint("alerts", __name__, url_prefix="/api/v1/alerts", description="Alerts: the outbox and its routing")
links = FlaskBlueprint("alert_links", __name__)


def _scope(session: Any, scope: str) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    owners = book(session, scope, None)  # a CSM's own accounts, a manager's team's; None: all
    return owners, tuple(current_principal().identities)


@bp.get("")
@access(*READ)
@bp.arguments(AlertQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@bp.response(200, AlertPageSchema)
def list_(page: int, per_page: int, scope: str, **filters: Any) -> dict[str, Any]:
    """Alerts, newest first. Filters: status (``dead`` lists what needs a retry), kind, channel,
    account, recipient, since. A CSM sees alerts about their book or addressed to them; a manager
    their team's: exactly the alerts they may open by id, whatever the ``scope`` (an alert is a
    message to someone, not a fact about the portfolio)."""
    del scope  # a CSM's or manager's list is their book's, as GET /alerts/<id> is
    session = get_session()
    with session.begin():
        owners, identities = _scope(session, "book")
        items, total = list_alerts(
            session,
            filters=AlertFilters(**filters, owners=owners, identities=identities),
            page=page,
            per_page=per_page,
        )
    return {"items": items, "page": page, "per_page": per_page, "total": total}


@bp.get("/<int:alert_id>")
@access(*READ)
@bp.arguments(NoQuerySchema, location="query", unknown=RAISE)
@bp.response(200, AlertSchema)
@bp.alt_response(404, description="No such alert (or not in the caller's book)")
def detail(_query: dict[str, Any], alert_id: int) -> dict[str, Any]:
    """One alert with its message as queued, attempts and last error."""
    session = get_session()
    with session.begin():
        owners, identities = _scope(session, "book")
        return get_alert(session, alert_id, filters=AlertFilters(owners=owners, identities=identities))


@bp.post("/<int:alert_id>/retry")
@access(*ADMIN)
@bp.arguments(NoQuerySchema, location="query", unknown=RAISE)
@bp.response(200, AlertSchema)
@bp.alt_response(404, description="No such alert")
@bp.alt_response(409, description="The alert is not dead")
def retry(_query: dict[str, Any], alert_id: int) -> dict[str, Any]:
    """Queue a dead alert again (due now, attempts from zero). Audited."""
    session = get_session()
    with session.begin():
        return retry_alert(session, alert_id, actor=actor_name(), now=dt.datetime.now(dt.UTC))


@bp.post("/<int:alert_id>/ack")
@access(*WORK)
@bp.arguments(NoQuerySchema, location="query", unknown=RAISE)
@bp.response(200, AlertSchema)
@bp.alt_response(404, description="No such alert")
@bp.alt_response(409, description="The alert does not ask for an acknowledgement")
def ack(_query: dict[str, Any], alert_id: int) -> dict[str, Any]:
    """Acknowledge a poor-health alert (and its copies to the other recipients): it will not
    escalate to the manager. Acknowledging again changes nothing."""
    session = get_session()
    with session.begin():
        account_id = alert_account(session, alert_id)
        if account_id is not None:
            require_in_book(session, account_id=account_id)
        return acknowledge_alert(session, alert_id, actor=actor_name(), now=dt.datetime.now(dt.UTC))


@bp.get("/routing")
@access(*ADMIN)
@bp.arguments(NoQuerySchema, location="query", unknown=RAISE)
@bp.response(200, RoutingSchema)
def routing(_query: dict[str, Any]) -> dict[str, Any]:
    """Who hears about what: the current routing document and its version (0: the defaults)."""
    session = get_session()
    with session.begin():
        return get_routing(session)


@bp.put("/routing")
@access(*ADMIN)
@bp.response(200, RoutingSchema)
@bp.alt_response(409, description="The routing changed since the version given")
@body_refusals(bp, "An invalid document (field messages under errors.json); nothing changed")
@bp.doc(**json_body_doc(RoutingUpdateSchema, "The whole routing document, the version it is based on, and a comment."))
def replace_routing() -> dict[str, Any]:
    """Replace the routing document (a new version; audited). Webhook URLs must be https, on the
    allowlist (``ALERT_WEBHOOK_HOSTS``) and not point at private addresses."""
    data = load_json_body()
    body = load_with(
        RoutingUpdateSchema(), data if isinstance(data, dict) else {"_": data}, "The routing change is invalid."
    )
    settings = AlertSettings.from_config(current_app.config)
    session = get_session()
    with session.begin():
        return save_routing(
            session,
            body["document"],
            version=body["version"],
            comment=body["comment"],
            actor=actor_name(),
            settings=settings,
        )


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p>{text}</p>{form}</body></html>"""
_FORM = """<form method="post"><input type="hidden" name="token" value="{token}">
<button type="submit">Acknowledge</button></form>"""
_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token must not leak to other sites
    "X-Frame-Options": "DENY",
}


def _page(title: str, text: str, status: int, form: str = "") -> tuple[str, int, dict[str, str]]:
    return _PAGE.format(title=html.escape(title), text=text, form=form), status, _HEADERS


@links.route("/alerts/ack", methods=["GET", "POST"])
def ack_link() -> tuple[str, int, dict[str, str]]:
    """The acknowledge link of a message: the signed token says which alert, until when.

    GET shows the alert and a button; only the POST it sends acknowledges, so a mail scanner
    or a link preview that fetches the link acknowledges nothing."""
    token = request.form.get("token", "") if request.method == "POST" else request.args.get("token", "")
    now = dt.datetime.now(dt.UTC)
    try:
        alert_id = verify_ack(
            str(current_app.config["SECRET_KEY"]),
            token,
            now=int(now.timestamp()),
            max_age=int(current_app.config["ALERT_ACK_LINK_DAYS"]) * 86_400,
        )
    except InvalidAckToken as exc:
        return _page("Link not valid", html.escape(f"This acknowledge link is not valid: {exc}."), 400)
    session = get_session()
    with session.begin():
        try:
            if request.method == "GET":
                alert = get_alert(session, alert_id)
            else:
                alert = acknowledge_alert(session, alert_id, actor="ack-link", now=now)
        except (NotFound, Conflict) as exc:  # say it plainly, as a page
            return _page("Not acknowledged", html.escape(exc.message), exc.code)
    name = html.escape(str(alert.get("account_name") or "the account"))
    if request.method == "POST" or alert.get("acknowledged_at") is not None:
        who = html.escape(str(alert.get("acknowledged_by") or ""))
        return _page("Acknowledged", f"The alert about {name} is acknowledged ({who}); it will not escalate.", 200)
    if not alert.get("requires_ack"):
        return _page("Not acknowledged", "This alert does not ask for an acknowledgement.", 409)
    text = f"Acknowledge the alert about {name}? Its manager is told if nobody does."
    return _page("Acknowledge this alert", text, 200, _FORM.format(token=html.escape(token, quote=True)))
