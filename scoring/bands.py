"""Health bands: the named ranges of the score."""

from __future__ import annotations

from enum import StrEnum


class Band(StrEnum):
    GOOD = "good"
    AVERAGE = "average"
    POOR = "poor"


#: Band codes used in arrays: ``BANDS[code]`` is the band; ``NO_BAND`` when there is no score.
BANDS: tuple[Band, ...] = (Band.GOOD, Band.AVERAGE, Band.POOR)
NO_BAND = -1
