"""How hard the property-based tests try: a light profile by default, the full one in CI.

``HS_HYPOTHESIS_PROFILE=full`` (``.ci/run`` sets it) runs every property test with the number of
examples it names; the default ``dev`` profile runs a fifth of them (at least 10), so
``pytest tests/unit`` stays quick while a change is being made.
"""

from __future__ import annotations

import os

from hypothesis import settings

PROFILES = ("dev", "full")
DEV_SHARE = 5  # the dev profile runs 1/DEV_SHARE of each test's examples ...
DEV_MINIMUM = 10  # ... and never fewer than this

settings.register_profile("full", deadline=None)
settings.register_profile("dev", max_examples=20, deadline=None)


def profile() -> str:
    """The profile ``HS_HYPOTHESIS_PROFILE`` names (``dev`` when unset)."""
    name = os.environ.get("HS_HYPOTHESIS_PROFILE", "dev")
    if name not in PROFILES:
        raise ValueError(f"HS_HYPOTHESIS_PROFILE must be one of {', '.join(PROFILES)}, got {name!r}")
    return name


def examples(full: int) -> int:
    """The examples a property test runs under the current profile: ``full`` in CI, fewer by default."""
    return full if profile() == "full" else max(DEV_MINIMUM, full // DEV_SHARE)


def load() -> None:
    """Make the current profile the default for tests that name no number of examples."""
    settings.load_profile(profile())
