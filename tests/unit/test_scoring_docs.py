"""The worked examples of docs/scoring.md are valid configs: each, set into the default config
with a weight for every measure, loads through the API's schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.schemas.scoring_config import load_scoring_config
from scoring.model import default_config_dict

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[2] / "docs" / "scoring.md"


def _examples() -> list[str]:
    text = DOC.read_text(encoding="utf-8").split("## Three worked examples", 1)[1].split("## Changing one thing", 1)[0]
    return re.findall(r"```json\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("block", _examples(), ids=["usage-events", "seat-based", "usage-metered"])
def test_worked_examples_are_valid_configs(block: str) -> None:
    part = json.loads("{" + block.strip().rstrip(",") + "}")
    data = default_config_dict()
    data["stages"] = part.get("stages", data["stages"])
    data["bands"] = part.get("bands", data["bands"])
    for measure in part["measures"]:
        measure.setdefault("label", measure["name"])
    data["measures"] = part["measures"]
    data["weights"] = {stage: {m["name"]: 1 for m in part["measures"]} for stage in data["weights"]}
    data["rules"] = [r for r in data["rules"] if r["type"] != "threshold"]
    model = load_scoring_config(data)
    assert [m.name for m in model.measures] == [m["name"] for m in part["measures"]]


def test_there_are_three_worked_examples() -> None:
    assert len(_examples()) == 3
