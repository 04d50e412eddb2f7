"""The base of every marshmallow loader of outside data: API bodies and query strings
(``app.schemas.ApiSchema``) and ingested records (``app.records``)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

#: The largest integer the databases store in an INTEGER column (PostgreSQL's is 32-bit).
MAX_INT = 2**31 - 1


class StrictSchema(Schema):
    """Rejects unknown keys. ``unknown`` does not propagate to nested schemas, so it lives here.

    Every integer it loads must fit a database INTEGER: a larger one is a field error (422), never
    an overflow in the database (500).
    """

    class Meta:
        unknown = RAISE

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        if isinstance(field_obj, fields.Integer) and not field_obj.dump_only:
            field_obj.validators = [*field_obj.validators, validate.Range(min=-MAX_INT - 1, max=MAX_INT)]
