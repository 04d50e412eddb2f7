"""Marshmallow schemas for every API input and output; ``ApiSchema`` is the base of them all."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

#: The largest integer the databases store in an INTEGER column (PostgreSQL's is 32-bit).
MAX_INT = 2**31 - 1


class ApiSchema(Schema):
    """Rejects unknown keys. ``unknown`` does not propagate to nested schemas, so it lives here.

    Every integer it loads must fit a database INTEGER: a larger one is a field error (422), never
    an overflow in the database (500).
    """

    class Meta:
        unknown = RAISE

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        if isinstance(field_obj, fields.Integer) and not field_obj.dump_only:
            field_obj.validators = [*field_obj.validators, validate.Range(min=-MAX_INT - 1, max=MAX_INT)]


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
