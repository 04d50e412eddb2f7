"""The files an operator and a packager look for: a LICENSE matching setup.cfg, a changelog, and
the operations guide the README points to."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_the_license_file_is_the_license_setup_cfg_declares() -> None:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert setup["metadata"]["license"] == "Apache-2.0"
    assert setup["metadata"]["license_files"].strip() == "LICENSE"
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_a_changelog_and_the_operations_guide_exist_and_are_linked() -> None:
    assert (ROOT / "CHANGELOG.md").read_text().startswith("# Changelog")
    operations = (ROOT / "docs" / "operations.md").read_text()
    for topic in ("## Upgrades", "## Backup and restore", "### Several web workers", "### Several schedulers"):
        assert topic in operations
    assert "docs/operations.md" in (ROOT / "README.md").read_text()
