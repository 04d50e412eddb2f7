"""Marshmallow schemas for every API input and output; ``ApiSchema`` is the base of them all."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate


class ApiSchema(Schema):
    """Rejects unknown keys. ``unknown`` does not propagate to nested schemas, so it lives here."""

    class Meta:
        unknown = RAISE


class PaginationQuerySchema(ApiSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))


class PageSchema(ApiSchema):
    """The envelope of a page of results; subclasses add ``items``."""

    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer(metadata={"description": "Items matching the filters, on every page."})
