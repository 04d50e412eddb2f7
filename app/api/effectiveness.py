"""Play effectiveness: treated accounts against comparable accounts that did not get the play."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_smorest import Blueprint
from marshmallow import RAISE

from app.auth import READ, access
from app.db import get_session
from app.schemas.effectiveness import EffectivenessQuerySchema, EffectivenessSchema
from app.services.effectiveness import play_effectiveness

bp = Blueprint(
    "play_effectiveness", __name__, url_prefix="/api/v1/plays", description="How well each success play works"
)


@bp.get("/<string:play_id>/effectiveness")
@access(*READ)
@bp.arguments(EffectivenessQuerySchema, location="query", as_kwargs=True, unknown=RAISE)
@bp.response(200, EffectivenessSchema)
@bp.alt_response(404, description="No such play")
def effectiveness(play_id: str, since: dt.date | None = None, until: dt.date | None = None) -> dict[str, Any]:
    """Score change 30 and 90 days after the play's runs, and the renewal rate, against controls.

    Treated: the play's runs started in ``[since, until]``. Each run's cell is (start day, stage,
    band), read from the account's health score of that day (else the run's own stage and band).
    Score change at h days: the score on exactly start + h minus the score on the start day; runs
    without that score are counted as not yet measurable. Controls: accounts scored in the same
    cell with no run of this play within 90 days either side, over the same horizons. Each cell's
    control mean is weighted by the treated runs in that cell (direct standardisation); treated
    runs in cells without controls are counted as unmatched and left out of the difference.
    Renewal: the first outcome after the run (cell) day; renewed or expanded counts as renewed,
    churned or downgraded as not; null rates come with a reason. See docs/play-effectiveness.md.
    """
    session = get_session()
    with session.begin():
        return play_effectiveness(session, play_id, since=since, until=until)
