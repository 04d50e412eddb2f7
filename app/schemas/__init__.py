"""Marshmallow schemas for every API input and output; ``ApiSchema`` is the base of them all."""

from __future__ import annotations

from marshmallow import fields, validate

from app.validation import MAX_INT, StrictSchema

__all__ = ["MAX_INT", "ApiSchema", "PageSchema", "PaginationQuerySchema", "scope_field"]


class ApiSchema(StrictSchema):
    """The base of every API schema: unknown keys are refused, and every integer it loads must fit
    a database INTEGER (see ``app.validation.StrictSchema``)."""


def scope_field() -> fields.String:
    """``scope``: ``book`` (default) limits a list to the caller's book when no owner is named
    (a CSM's own accounts, a manager's team; everything for other roles); ``all`` lifts that."""
    return fields.String(
        load_default="book",
        validate=validate.OneOf(["book", "all"]),
        metadata={"description": "book: the caller's own accounts (CSM) or team (manager) unless owner is given; all."},
    )


class PaginationQuerySchema(ApiSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))


class PageSchema(ApiSchema):
    """The envelope of a page of results; subclasses add ``items``."""

    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer(metadata={"description": "Items matching the filters, on every page."})
