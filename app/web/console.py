"""The admin console: scoring config versions and their diff (a table), a change (weights per stage
and band cut-offs) as a form with its preview, activation with its rescore's progress, rollback;
the alert routing (read and replace, as ``PUT /api/v1/alerts/routing``), job runs and requests
(read, as the API), and the quarantine (read, and retry as ``POST /api/v1/ingest/quarantine/retry``)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from marshmallow import ValidationError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from app.auth import actor_name
from app.db import get_session
from app.errors import Conflict, DomainValidationError, NotFound
from app.schemas.alerts import RoutingUpdateSchema
from app.schemas.config_admin import NewVersionSchema, PreviewSchema
from app.schemas.ingest import QuarantineFilterSchema
from app.services.alerts.admin import get_routing, save_routing
from app.services.alerts.settings import AlertSettings
from app.services.audit import record
from app.services.ingest.pull import list_quarantine, retry_quarantine
from app.services.jobs.requests import get_job_request, list_job_requests
from app.services.jobs.runs import list_job_runs
from app.services.scoring_config.versions import (
    activate_version,
    active_version,
    create_version,
    diff_versions,
    list_versions,
    preview,
)
from app.validation import JSONTooDeep, loads_json
from app.web.access import ADMIN, page
from app.web.errors import guard
from scoring.measures import PERS, TRANSFORMS, Direction, Form, Mapping01, MeasureGroup, Missing
from scoring.model import patch_config
from scoring.stage import STAGES

bp = guard(Blueprint("web_console", __name__, url_prefix="/admin"))


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Nested schema messages as {"weights.established.nps": [...]}: the form's field names."""
    if isinstance(messages, dict):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: [str(m) for m in messages] if isinstance(messages, list) else [str(messages)]}


def _proposed(active: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The active config with the form's weights and band cut-offs, and the fields that are not numbers."""
    config = copy.deepcopy(active["config"])
    errors: dict[str, list[str]] = {}
    fields = [("bands", band, config["bands"]) for band in config["bands"]]
    fields += [(f"weights.{stage}", name, weights) for stage, weights in config["weights"].items() for name in weights]
    for prefix, name, holder in fields:
        key = f"{prefix}.{name}"
        raw = request.form.get(key, "").strip()
        if raw == "":
            continue
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            errors[key] = ["Not a valid number."]
            continue
        holder[name] = int(value) if value.is_integer() else value
    return config, errors


def _console(*, errors: dict[str, list[str]] | None = None, result: dict[str, Any] | None = None,
             status: int = 200) -> Any:  # fmt: skip
    session = get_session()
    with session.begin():
        active = active_version(session)
        versions, _ = list_versions(session, page=1, per_page=50)
        diff = None
        if request.args.get("from", "").isdigit() and request.args.get("to", "").isdigit():
            diff = diff_versions(session, int(request.args["from"]), int(request.args["to"]))
    values = request.form if request.method == "POST" else {}
    return render_template("web/admin_config.html", active=active, versions=versions, errors=errors or {},
                           values=values, result=result, diff=diff, args=request.args), status  # fmt: skip


@bp.get("/config")
@page(*ADMIN)
def config() -> Any:
    """Versions (activate one, or roll back), the diff of any two, and the change form."""
    return _console()


@bp.post("/config")
@page(*ADMIN)
def change() -> Any:
    """Preview the change (band moves, backtest AUC side by side), or store it and activate it."""
    session = get_session()
    with session.begin():
        active = active_version(session)
    config, errors = _proposed(active)
    if errors:
        return _console(errors=errors, status=422)

    def refused(messages: Any) -> dict[str, list[str]]:
        messages = messages if isinstance(messages, dict) else {"config": messages}
        return _flatten(messages.get("config", messages))

    return _preview_or_activate(session, config, _console, refused)


def _preview_or_activate(
    session: Session, config: dict[str, Any], show: Callable[..., Any], refused: Callable[[Any], Any]
) -> Any:
    """The change forms' common end: preview ``config`` (band moves, the backtest side by side) and
    ``show`` it, or (``action=activate``) store it, activate it and follow its rescore. A config the
    schema refuses is shown again with ``refused``'s field messages."""
    activate = request.form.get("action") == "activate"
    try:
        if activate:
            new = NewVersionSchema().load({"config": config, "comment": request.form.get("comment", "")})
        else:
            args = PreviewSchema().load({"config": config})
    except ValidationError as exc:
        return show(errors=refused(exc.messages), status=422)
    if not activate:
        try:
            result = preview(session, args.pop("config"), **args)
        finally:
            session.rollback()  # a preview never writes
        return show(result=result)
    with session.begin():
        stored = create_version(session, new, actor=actor_name())
        activation = activate_version(session, stored["version"], actor=actor_name())
    return redirect(url_for("web_console.job_request", request_id=activation["rescore"].id))


#: The measure form's fields (docs/scoring.md, the measure language), each a text field or a choice.
MEASURE_FIELDS = ("label", "group", "source", "aggregate", "window_days", "per", "form", "transform", "data_days",
                  "priority", "missing", "mapping", "direction", "thresholds", "ratio")  # fmt: skip
_INTEGER_FIELDS = ("window_days", "data_days")
_LIST_FIELDS = ("ratio", "priority")  # names separated by commas
#: The choices of the form's selects (a blank choice: the field left out, the language's default).
MEASURE_CHOICES = {
    "group": [g.value for g in MeasureGroup],
    "aggregate": ["sum", "count", "mean", "active_days", "latest", "max", "nps"],
    "per": list(PERS),
    "form": [f.value for f in Form],
    "transform": list(TRANSFORMS),
    "missing": [m.value for m in Missing],
    "mapping": [m.value for m in Mapping01],
    "direction": [d.value for d in Direction],
}


def _measure_form() -> tuple[str, dict[str, Any], dict[str, Any], dict[str, list[str]]]:
    """The form's measure as a merge patch of the one of that name (a blank field is None: left out
    of a new measure, removed from the one edited), its weight per stage, and the fields that do not
    parse; the schema and the core check the rest (the API's own rules and messages)."""
    name = request.form.get("name", "").strip()
    errors: dict[str, list[str]] = {} if name else {"name": ["Give the measure a name."]}
    measure: dict[str, Any] = {}
    for field in MEASURE_FIELDS:
        raw = request.form.get(field, "").strip()
        value: Any = raw or None
        if raw and field in _INTEGER_FIELDS and raw.isdigit():
            value = int(raw)  # else the text itself: the schema says it is not a valid integer
        elif raw and field in _LIST_FIELDS:
            value = [part.strip() for part in raw.split(",")]
        elif raw and field == "thresholds":
            numbers = [_number(part) for part in raw.split(",")]
            if any(number is None for number in numbers):
                errors[field] = ["Numbers separated by commas, for example 0, 1, 5."]
            value = numbers
        measure[field] = value
    weights: dict[str, Any] = {}
    for stage in STAGES:
        key = f"weight.{stage.value}"
        raw = request.form.get(key, "").strip()
        weights[stage.value] = {name: _number(raw) if raw else None}
        if raw and _number(raw) is None:
            errors[key] = ["Not a valid number."]
    return name, measure, weights, errors


def _number(raw: str) -> float | int | None:
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() else value


def _measure_errors(messages: Any, config: dict[str, Any], name: str) -> dict[str, list[str]]:
    """The config's field errors as the form's fields: ``measures.<i>.window_days`` of this measure
    is ``window_days``, its weight in a stage ``weight.<stage>``; any other is kept as it is."""
    flat = _flatten(messages.get("config", messages) if isinstance(messages, dict) else {"config": messages})
    names = [m.get("name") for m in config.get("measures", [])]
    index = names.index(name) if name in names else -1
    errors: dict[str, list[str]] = {}
    prefix = f"measures.{index}."
    for path, value in flat.items():
        key = path
        if path.startswith(prefix):
            field = path[len(prefix) :].split(".")[0]
            key = field if field in MEASURE_FIELDS or field == "name" else path
        elif path.startswith("weights.") and path.endswith(f".{name}"):
            key = "weight." + path.split(".")[1]
        errors.setdefault(key, []).extend(value)
    return errors


def _measure_page(*, errors: dict[str, list[str]] | None = None, result: dict[str, Any] | None = None,
                  status: int = 200) -> Any:  # fmt: skip
    """The measure form: empty (a new measure), the measure ``?name=`` of the active config, or
    what was posted (a refusal, or a preview)."""
    session = get_session()
    with session.begin():
        active = active_version(session)
    config = active["config"]
    if request.method == "POST":
        values: dict[str, str] = dict(request.form.items())
    else:
        values = {}
        name = request.args.get("name", "").strip()
        if name:
            found = next((m for m in config["measures"] if m.get("name") == name), None)
            if found is None:
                raise NotFound(f"The active config has no measure {name!r}.")
            values = {key: _as_text(value) for key, value in found.items()}
            values.update({f"weight.{stage}": _as_text(w.get(name, "")) for stage, w in config["weights"].items()})
    existing = [m.get("name") for m in config["measures"]]
    return render_template("web/admin_measure.html", active=active, values=values, errors=errors or {},
                           result=result, choices=MEASURE_CHOICES, stages=[s.value for s in STAGES],
                           editing=values.get("name") in existing, existing=existing), status  # fmt: skip


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_as_text(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@bp.get("/config/measure")
@page(*ADMIN)
def measure() -> Any:
    """Add a measure of the measure language, or edit one (``?name=``), with its weight per stage."""
    return _measure_page()


@bp.post("/config/measure")
@page(*ADMIN)
def change_measure() -> Any:
    """The active config with the form's measure added or changed (``PATCH /api/v1/scoring/config``'s
    merge, keyed by the measure's name): preview it (band moves, backtest side by side), or store and
    activate it. A refusal shows the form again with each field's message and what was typed."""
    name, measure_patch, weights, errors = _measure_form()
    if errors:
        return _measure_page(errors=errors, status=422)
    session = get_session()
    with session.begin():
        active = active_version(session)
    config = patch_config(active["config"], {"measures": {name: measure_patch}, "weights": weights})
    return _preview_or_activate(
        session, config, _measure_page, lambda messages: _measure_errors(messages, config, name)
    )


@bp.post("/config/versions/<int:version>/activate")
@page(*ADMIN)
def activate(version: int) -> Response:
    """Activate a stored version (a rollback when it is older), then follow its rescore."""
    session = get_session()
    with session.begin():
        activation = activate_version(session, version, actor=actor_name())
    return redirect(url_for("web_console.job_request", request_id=activation["rescore"].id))


@bp.get("/jobs/requests/<int:request_id>")
@page(*ADMIN)
def job_request(request_id: int) -> Any:
    """A queued job (the rescore after an activation): the page reloads itself until it ends."""
    session = get_session()
    with session.begin():
        job = get_job_request(session, request_id)
        row = {"id": job.id, "kind": job.kind.value, "status": job.status.value, "requested_by": job.requested_by,
               "requested_at": job.requested_at, "started_at": job.started_at, "finished_at": job.finished_at,
               "attempts": job.attempts, "error": job.error, "result": job.result}  # fmt: skip
    return render_template("web/admin_job.html", job=row, running=row["status"] in ("queued", "running"))


@bp.get("/jobs")
@page(*ADMIN)
def jobs() -> Any:
    session = get_session()
    with session.begin():
        runs, _ = list_job_runs(session, job=None, status=None, page=1, per_page=50)
        requests, _ = list_job_requests(session, status=None, kind=None, page=1, per_page=20)
        rows = [{"id": r.id, "job": r.job, "status": r.status.value, "started_at": r.started_at,
                 "finished_at": r.finished_at, "counts": r.counts, "error": r.error} for r in runs]  # fmt: skip
        queued = [{"id": r.id, "kind": r.kind.value, "status": r.status.value, "requested_at": r.requested_at}
                  for r in requests]  # fmt: skip
    return render_template("web/admin_jobs.html", runs=rows, requests=queued)


@bp.get("/routing")
@page(*ADMIN)
def routing() -> Any:
    """The routing document (who hears about what) and its version, as a form to replace it."""
    return _routing_page()


def _routing_page(*, errors: dict[str, Any] | None = None, status: int = 200) -> Any:
    session = get_session()
    with session.begin():
        current = get_routing(session)
    document = json.dumps(current["document"], indent=2, default=str)
    values = request.form if errors else {}
    return render_template("web/admin_routing.html", routing=current, document=values.get("document", document),
                           comment=values.get("comment", ""), errors=_flatten(errors or {})), status  # fmt: skip


@bp.post("/routing")
@page(*ADMIN)
def replace_routing() -> Any:
    """A new routing version from the form's document (the API's rules: 422 with the field's message,
    409 when someone saved a version meanwhile); the typed document is kept on a refusal."""
    try:
        document = loads_json(request.form.get("document", ""))
    except (ValueError, JSONTooDeep) as exc:
        return _routing_page(errors={"document": [f"Not valid JSON: {exc}"]}, status=422)
    fields = {"version": request.form.get("version", ""), "document": document,
              "comment": request.form.get("comment", "")}  # fmt: skip
    try:
        body = RoutingUpdateSchema().load(fields)
    except ValidationError as exc:
        return _routing_page(errors=exc.messages if isinstance(exc.messages, dict) else {"document": exc.messages},
                             status=422)  # fmt: skip
    session = get_session()
    try:
        with session.begin():
            save_routing(session, body["document"], version=body["version"], comment=body["comment"],
                         actor=actor_name(), settings=AlertSettings.from_config(current_app.config))  # fmt: skip
    except DomainValidationError as exc:
        return _routing_page(errors=exc.errors or {"document": [exc.message]}, status=422)
    except Conflict as exc:
        return _routing_page(errors={"version": [exc.message]}, status=409)
    return redirect(url_for("web_console.routing"))


@bp.get("/quarantine")
@page(*ADMIN)
def quarantine() -> Any:
    """Rejected records with their reasons, and the form that validates them again."""
    return _quarantine_page()


def _quarantine_page(*, summary: Any = None, errors: dict[str, Any] | None = None, status: int = 200) -> Any:
    session = get_session()
    with session.begin():
        records, total = list_quarantine(session, source=None, kind=None, page=1, per_page=100)
        rows = [{"id": r.id, "source": r.source, "kind": r.kind, "reasons": r.errors, "at": r.quarantined_at}
                for r in records]  # fmt: skip
    return render_template("web/admin_quarantine.html", rows=rows, total=total, summary=summary,
                           errors=errors or {}, values=request.form), status  # fmt: skip


@bp.post("/quarantine/retry")
@page(*ADMIN)
def retry() -> Any:
    """Validate the quarantined records again (all, or one source or kind); those that land leave."""
    try:
        filters = QuarantineFilterSchema().load(
            {k: v for k in ("source", "kind") if (v := request.form.get(k, "").strip())}
        )
    except ValidationError as exc:
        return _quarantine_page(errors=exc.messages if isinstance(exc.messages, dict) else {}, status=422)
    session = get_session()
    with session.begin():
        summary = retry_quarantine(session, source=filters.get("source"), kind=filters.get("kind"),
                                   now=dt.datetime.now(dt.UTC))  # fmt: skip
        record(session, actor=actor_name(), action="ingest.quarantine_retry", target="ingest:quarantine",
               details={**filters, "landed": summary.landed})  # fmt: skip
    return _quarantine_page(summary=summary)
