"""Schemas of plays, play runs, tasks and events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate

from app.field_errors import nest_play_errors
from app.models.enums import PlayRunStatus, TaskStatus
from app.schemas import ApiSchema, PageSchema, PaginationQuerySchema, scope_field
from playbooks.plays import (
    MAX_TASKS,
    AlertMode,
    OwnerRole,
    Play,
    PlayError,
    TaskType,
    load_play,
)
from scoring.bands import Band
from scoring.rules import RuleKind, RuleType, Severity
from scoring.stage import STAGES

_STAGE = fields.String(validate=validate.OneOf([s.value for s in STAGES]))


class UtcDateTime(fields.DateTime):
    """A moment written in UTC with its offset on every backend (SQLite hands back naive UTC)."""

    def _serialize(self, value: dt.datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is not None:
            value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
        return super()._serialize(value, attr, obj, **kwargs)


class TaskTemplateSchema(ApiSchema):
    type = fields.String(required=True, validate=validate.OneOf([t.value for t in TaskType]))
    title = fields.String(required=True, validate=validate.Length(min=1, max=500))
    due_days = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=0, max=365),
        metadata={"description": "The task is due this many days after the run starts."},
    )  # fmt: skip
    owner_role = fields.String(load_default=OwnerRole.CSM.value, validate=validate.OneOf([r.value for r in OwnerRole]))
    description = fields.String(load_default="", validate=validate.Length(max=5000))


class PlayTriggerSchema(ApiSchema):
    rules = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        metadata={"description": "Event rule ids: the play starts when any of them fires."},
    )
    band = fields.String(
        validate=validate.OneOf([b.value for b in Band]),
        metadata={"description": "Or: the play starts while the account is in this band."},
    )
    stages = fields.List(_STAGE, load_default=list, metadata={"description": "Empty: every stage."})


class PlaySchema(ApiSchema):
    """A play. ``load`` returns a ``playbooks.plays.Play``; ``dump`` takes ``play.to_dict()``."""

    id = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_-]{0,63}$"))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    trigger = fields.Nested(PlayTriggerSchema, required=True)
    tasks = fields.List(
        fields.Nested(TaskTemplateSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_TASKS, error="Between {min} and {max} tasks."),
    )
    watchlist = fields.Boolean(load_default=False, metadata={"description": "Put the account on the watchlist."})
    alert = fields.String(load_default=AlertMode.IMMEDIATE.value, validate=validate.OneOf([m.value for m in AlertMode]))
    cooldown_days = fields.Integer(
        load_default=30, strict=True, validate=validate.Range(min=0, max=3650),
        metadata={"description": "No new run for an account within this many days of its last run."},
    )  # fmt: skip
    enabled = fields.Boolean(load_default=True)

    @post_load
    def _make_play(self, data: dict[str, Any], **kwargs: Any) -> Play:
        # Meaning is the core's check (``playbooks.plays.check_play``), reported against the fields.
        try:
            return load_play(data, self.context_rule_ids)
        except PlayError as exc:
            raise ValidationError(nest_play_errors(exc.errors)) from exc

    def __init__(self, *args: Any, rule_ids: frozenset[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.context_rule_ids = rule_ids


class PlayOutSchema(PlaySchema):
    version = fields.Integer(dump_only=True)
    updated_at = UtcDateTime(dump_only=True)
    updated_by = fields.String(dump_only=True)


class EventSchema(ApiSchema):
    id = fields.Integer()
    account_id = fields.Integer()
    account_name = fields.String()
    owner = fields.String(allow_none=True)
    rule_id = fields.String()
    rule_name = fields.String()
    kind = fields.String(metadata={"enum": [k.value for k in RuleKind]})
    severity = fields.String(metadata={"enum": [s.value for s in Severity]})
    stage = fields.String()
    day = fields.Date()
    score = fields.Float(allow_none=True)
    config_version = fields.Integer()
    trigger_values = fields.Dict(metadata={"description": "What made the rule fire: values and thresholds."})
    created_at = UtcDateTime()


class EventPageSchema(PageSchema):
    items = fields.List(fields.Nested(EventSchema))


class EventQuerySchema(PaginationQuerySchema):
    scope = scope_field()
    since = fields.Date(metadata={"description": "Events of this day or later."})
    kind = fields.String(validate=validate.OneOf([k.value for k in RuleKind]))
    rule = fields.String(validate=validate.Length(min=1, max=64))
    stage = _STAGE
    owner = fields.String(validate=validate.Length(min=1, max=255), metadata={"description": "The account's CSM."})
    severity = fields.String(validate=validate.OneOf([s.value for s in Severity]))


class AccountEventQuerySchema(PaginationQuerySchema):
    since = fields.Date(metadata={"description": "Events of this day or later."})
    kind = fields.String(validate=validate.OneOf([k.value for k in RuleKind]))


class NoQuerySchema(ApiSchema):
    """For endpoints without query parameters: any parameter is refused, not ignored."""


# --- rules --------------------------------------------------------------------------------------


class RuleOutSchema(ApiSchema):
    id = fields.String()
    name = fields.String()
    kind = fields.String(metadata={"enum": [k.value for k in RuleKind]})
    severity = fields.String(metadata={"enum": [s.value for s in Severity]})
    type = fields.String(metadata={"enum": [t.value for t in RuleType]})
    stages = fields.List(fields.String(), metadata={"description": "Empty: every stage."})
    parameters = fields.Dict(metadata={"description": "The parameters of the rule's type (at, window_days, ...)."})
    description = fields.String(metadata={"description": "The condition in words."})
    notes = fields.String(metadata={"description": "The config's free-text description of the rule."})


class RuleListSchema(ApiSchema):
    config_version = fields.Integer(metadata={"description": "The active scoring config version."})
    items = fields.List(fields.Nested(RuleOutSchema))


# --- plays --------------------------------------------------------------------------------------


class PlayOutWithCreatedSchema(PlayOutSchema):
    created_at = UtcDateTime(dump_only=True)


class PlayListSchema(ApiSchema):
    items = fields.List(fields.Nested(PlayOutWithCreatedSchema))


class PlayReplaceSchema(PlaySchema):
    """The body of ``PUT /plays/<id>`` (documentation): a play, its id optional, and optionally the
    version it was read at, refused with 409 when the play changed since."""

    id = fields.String(
        validate=validate.Regexp(r"^[a-z][a-z0-9_-]{0,63}$"), metadata={"description": "The path's id, or absent."}
    )
    version = fields.Integer(metadata={"description": "The version read; 409 when the play is no longer at it."})


# --- tasks and play runs ------------------------------------------------------------------------


class TaskQuerySchema(PaginationQuerySchema):
    scope = scope_field()
    owner = fields.String(validate=validate.Length(min=1, max=255), metadata={"description": "The assignee."})
    status = fields.Enum(TaskStatus, by_value=True)
    due_before = fields.Date(metadata={"description": "Tasks due on this day or earlier."})
    account = fields.Integer(validate=validate.Range(min=1), metadata={"description": "An account id."})
    play = fields.String(validate=validate.Length(min=1, max=64), metadata={"description": "A play id."})


class RunTaskSchema(ApiSchema):
    id = fields.Integer()
    position = fields.Integer(metadata={"description": "0-based order within the run."})
    type = fields.Enum(TaskType, by_value=True)
    title = fields.String()
    description = fields.String()
    owner_role = fields.Enum(OwnerRole, by_value=True)
    assignee = fields.String(allow_none=True)
    due_on = fields.Date()
    status = fields.Enum(TaskStatus, by_value=True)
    completed_by = fields.String(allow_none=True)
    completed_at = UtcDateTime(allow_none=True)
    created_at = UtcDateTime()


class TaskOutSchema(RunTaskSchema):
    account_id = fields.Integer()
    account_name = fields.String()
    play_id = fields.String()
    play_name = fields.String(allow_none=True)
    play_run_id = fields.Integer()
    play_run_status = fields.Enum(PlayRunStatus, by_value=True)


class TaskPageSchema(PageSchema):
    items = fields.List(fields.Nested(TaskOutSchema))


class TaskUpdateSchema(ApiSchema):
    status = fields.Enum(TaskStatus, by_value=True, required=True)
    by = fields.String(
        validate=validate.Length(min=1, max=255),
        metadata={"description": "Who closed the task, when not the caller (default: the calling token's user)."},
    )


class PlayRunQuerySchema(PaginationQuerySchema):
    status = fields.Enum(PlayRunStatus, by_value=True)


class PlayRunOutSchema(ApiSchema):
    id = fields.Integer()
    play_id = fields.String()
    play_name = fields.String(allow_none=True)
    play_version = fields.Integer(metadata={"description": "The play's version when the run started."})
    status = fields.Enum(PlayRunStatus, by_value=True)
    started_on = fields.Date()
    trigger_rule_id = fields.String(allow_none=True, metadata={"description": "Null: started by a band."})
    stage = fields.String()
    band = fields.String(allow_none=True)
    score = fields.Float(allow_none=True)
    watchlist = fields.Boolean()
    alert = fields.Enum(AlertMode, by_value=True)
    created_at = UtcDateTime()
    closed_at = UtcDateTime(allow_none=True)
    tasks = fields.List(fields.Nested(RunTaskSchema))


class PlayRunPageSchema(PageSchema):
    items = fields.List(fields.Nested(PlayRunOutSchema))
