"""Play matching: triggers by event and by band, stages, open runs, cooldowns; the default library."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from playbooks.plays import (
    OwnerRole,
    Play,
    PlayHistory,
    TaskTemplate,
    TaskType,
    check_play,
    default_plays_list,
    match_plays,
    play_from_dict,
)
from scoring.bands import BANDS, NO_BAND, Band
from scoring.model import default_config_dict, model_from_dict
from scoring.stage import STAGE_CODE, STAGES, LifecycleStage

pytestmark = pytest.mark.unit

RULE_IDS = ("a", "b", "c")
TASK = TaskTemplate(TaskType.CALL, "Call", 2, OwnerRole.CSM)
ON_EVENT = Play(id="on-event", name="On event", tasks=(TASK,), rules=("b", "c"), cooldown_days=10)
ON_BAND = Play(
    id="on-band", name="On band", tasks=(TASK,), band=Band.POOR, stages=(LifecycleStage.PRE_RENEWAL,), cooldown_days=0
)
NO_HISTORY = PlayHistory({}, {})


def fired(*pairs: tuple[int, int], n: int = 4) -> np.ndarray:
    out = np.zeros((len(RULE_IDS), n), dtype=bool)
    for rule, account in pairs:
        out[rule, account] = True
    return out


def run(
    plays: tuple[Play, ...],
    events: np.ndarray,
    *,
    band: tuple[int, ...] = (1, 1, 1, 1),
    stage: tuple[int, ...] = (1, 1, 1, 1),
    history: PlayHistory = NO_HISTORY,
    eligible: tuple[bool, ...] = (True, True, True, True),
    first: tuple[bool, ...] | None = None,
    previous_band: tuple[int, ...] | None = None,
) -> dict[str, tuple[list[int], list[int]]]:
    matches = match_plays(
        plays,
        RULE_IDS,
        fired=events,
        band=np.array(band, dtype=np.int8),
        stage=np.array(stage, dtype=np.int8),
        history=history,
        eligible=np.array(eligible),
        first=None if first is None else np.array(first),
        previous_band=None if previous_band is None else np.array(previous_band, dtype=np.int8),
    )
    return {m.play.id: (m.positions.tolist(), m.trigger_rule.tolist()) for m in matches}


def test_an_event_play_starts_where_one_of_its_rules_fired() -> None:
    result = run((ON_EVENT,), fired((0, 0), (1, 1), (2, 2), (1, 3), (2, 3)))
    # Account 0 only fired rule a (not the play's); account 3 fired both: the first listed (b) is the trigger.
    assert result == {"on-event": ([1, 2, 3], [1, 2, 1])}


def test_a_band_play_does_not_start_on_an_accounts_first_scored_day() -> None:
    """Day one records: an account already in the band when first scored starts no band play."""
    poor = BANDS.index(Band.POOR)
    pre = STAGE_CODE[LifecycleStage.PRE_RENEWAL]
    result = run(
        (ON_BAND, ON_EVENT), fired((1, 1)), band=(poor,) * 4, stage=(pre,) * 4, first=(True, True, False, False)
    )
    assert result == {"on-band": ([2, 3], [-1, -1]), "on-event": ([1], [1])}  # a rule that fired still counts


def test_a_band_play_starts_where_the_account_entered_its_band_or_the_play_ran_before() -> None:
    """The band is a level: entering it is what starts the play. Already in it on the previous
    scored day (day two of an installation, say) starts nothing, unless the play ran for the
    account before and its cooldown has passed (it repeats while the account stays there)."""
    poor, average = BANDS.index(Band.POOR), BANDS.index(Band.AVERAGE)
    pre = STAGE_CODE[LifecycleStage.PRE_RENEWAL]
    history = PlayHistory({}, {"on-band": np.array([np.nan, np.nan, 40.0, np.nan])})
    result = run(
        (ON_BAND,), fired(), band=(poor,) * 4, stage=(pre,) * 4, history=history,
        previous_band=(average, poor, poor, NO_BAND),
    )  # fmt: skip
    # 0 entered poor; 1 was already poor and never had the play; 2 was poor, ran 40 days ago; 3 had no score.
    assert result == {"on-band": ([0, 2, 3], [-1, -1, -1])}


def test_a_band_play_starts_in_its_band_and_stage_only() -> None:
    result = run((ON_BAND,), fired(), band=(2, 2, 1, 2), stage=(2, 1, 2, 2))
    assert result == {"on-band": ([0, 3], [-1, -1])}


def test_one_open_run_per_account_and_play() -> None:
    history = PlayHistory({"on-event": np.array([False, True, False, False])}, {})
    assert run((ON_EVENT,), fired((1, 0), (1, 1)), history=history) == {"on-event": ([0], [1])}


def test_cooldown_counts_from_the_last_run_start() -> None:
    since = np.array([9.0, 10.0, np.nan, 3.0])
    history = PlayHistory({}, {"on-event": since})
    assert run((ON_EVENT,), fired((1, 0), (1, 1), (1, 2), (1, 3)), history=history) == {"on-event": ([1, 2], [1, 1])}


def test_a_play_without_cooldown_still_starts_once_a_day() -> None:
    history = PlayHistory({"on-band": np.zeros(4, dtype=bool)}, {"on-band": np.array([0.0, 1.0, np.nan, 0.0])})
    result = run((ON_BAND,), fired(), band=(2, 2, 2, 2), stage=(2, 2, 2, 2), history=history)
    assert result == {"on-band": ([1, 2], [-1, -1])}


def test_disabled_plays_and_ineligible_accounts_start_nothing() -> None:
    assert run((replace(ON_EVENT, enabled=False),), fired((1, 0))) == {}
    assert run((ON_EVENT,), fired((1, 0), (1, 1)), eligible=(False, True, True, True)) == {"on-event": ([1], [1])}


def test_a_play_whose_rules_are_not_in_the_config_never_starts() -> None:
    play = replace(ON_EVENT, rules=("gone",))
    assert run((play,), fired((0, 0), (1, 0), (2, 0))) == {}


def test_default_library_is_valid_against_the_default_rules() -> None:
    rule_ids = frozenset(model_from_dict(default_config_dict()).rule_ids)
    plays = [play_from_dict(d) for d in default_plays_list()]
    assert len(plays) >= 9
    for play in plays:
        assert check_play(play, rule_ids) == {}, play.id
        assert play_from_dict(play.to_dict()) == play


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"rules": (), "band": None}, "trigger"),
        ({"band": Band.GOOD}, "trigger"),
        ({"rules": ("nope",)}, "trigger.rules.0"),
        ({"tasks": ()}, "tasks"),
        ({"tasks": (replace(TASK, due_days=400),)}, "tasks.0.due_days"),
        ({"id": "Bad id"}, "id"),
        ({"cooldown_days": -1}, "cooldown_days"),
    ],
)
def test_invalid_plays_are_refused_with_a_field_path(change: dict[str, object], path: str) -> None:
    play = replace(ON_EVENT, **change)  # type: ignore[arg-type]
    assert path in check_play(play, frozenset(RULE_IDS))


@pytest.mark.parametrize("data", default_plays_list(), ids=lambda d: d["id"])
def test_each_default_play_starts_on_its_trigger_and_not_outside_its_stages(data: dict[str, object]) -> None:
    model = model_from_dict(default_config_dict())
    play = play_from_dict(data)  # type: ignore[arg-type]
    n = len(STAGES)
    events = np.zeros((len(model.rules), n), dtype=bool)
    band = np.full(n, 1, dtype=np.int8)
    if play.band is not None:
        band[:] = BANDS.index(play.band)
    else:
        events[model.rule_ids.index(play.rules[0])] = True
    matches = match_plays(
        (play,),
        model.rule_ids,
        fired=events,
        band=band,
        stage=np.arange(n, dtype=np.int8),  # one account per stage
        history=NO_HISTORY,
        eligible=np.ones(n, dtype=bool),
    )
    expected = [i for i, stage in enumerate(STAGES) if not play.stages or stage in play.stages]
    assert [m.positions.tolist() for m in matches] == [expected]
    assert matches[0].play.tasks and all(t.title for t in matches[0].play.tasks)
