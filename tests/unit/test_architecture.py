"""Layering: the pure core (scoring/, playbooks/) and alerts/ import nothing from the web and DB shell."""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

#: What the pure core may import besides the standard library.
CORE_ALLOWED = frozenset({"numpy", "sklearn", "scipy", "joblib", "scoring", "playbooks"})
#: What alerts/ may not import: it renders and sends, and never touches the web app or the database.
ALERTS_FORBIDDEN = frozenset({"flask", "flask_smorest", "sqlalchemy", "app"})


def imported_modules(source: str, package: str) -> set[str]:
    """Top-level names of every module ``source`` imports, wherever the import statement is.

    Relative imports count as ``package``. ``importlib.import_module("x")`` and
    ``__import__("x")`` with a literal name count too.
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(package if node.level else (node.module or "").partition(".")[0])
        elif (
            isinstance(node, ast.Call)
            and _call_name(node.func) in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value.partition(".")[0])
    return names


def _call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def forbidden_core_imports(source: str, package: str) -> set[str]:
    """Imports the pure core may not have: anything outside the stdlib and ``CORE_ALLOWED``."""
    return {
        name
        for name in imported_modules(source, package)
        if name not in sys.stdlib_module_names and name not in CORE_ALLOWED
    }


def forbidden_alerts_imports(source: str, package: str = "alerts") -> set[str]:
    return imported_modules(source, package) & ALERTS_FORBIDDEN


def violations(package: str, check: Callable[[str, str], set[str]], root: Path = ROOT) -> dict[str, set[str]]:
    """Forbidden imports per file of ``package`` under ``root`` (empty when it is absent or clean)."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        bad = check(path.read_text(encoding="utf-8"), package)
        if bad:
            found[str(path.relative_to(root))] = bad
    return found


@pytest.mark.parametrize("package", ["scoring", "playbooks"])
def test_core_imports_only_stdlib_numpy_and_the_core(package):
    assert violations(package, forbidden_core_imports) == {}


def test_alerts_import_no_web_or_database_code():
    assert violations("alerts", forbidden_alerts_imports) == {}


def test_architecture_check_sees_the_scoring_package():
    # Guards against the walk silently finding nothing (a moved folder would pass every check).
    assert (ROOT / "scoring" / "health.py").is_file()
    assert "numpy" in imported_modules((ROOT / "scoring" / "health.py").read_text(encoding="utf-8"), "scoring")


# --- the checker itself, on synthetic sources ------------------------------------------------


@pytest.mark.parametrize(
    ("source", "forbidden"),
    [
        ("import json\nimport numpy as np\nfrom scoring.model import ScoringModel\n", set()),
        ("from __future__ import annotations\nfrom . import health\nfrom .stage import STAGES\n", set()),
        ("import sklearn.linear_model\nfrom scipy import stats\nimport joblib\nimport playbooks.rules\n", set()),
        ("import flask\n", {"flask"}),
        ("from sqlalchemy.orm import Session\n", {"sqlalchemy"}),
        ("import marshmallow as ma\n", {"marshmallow"}),
        ("from app.models import Account\n", {"app"}),
        ("import alerts.render\n", {"alerts"}),
        ("from config import Config\n", {"config"}),
        ("import json, requests\n", {"requests"}),
        ("def send():\n    from apscheduler.schedulers.background import BackgroundScheduler\n", {"apscheduler"}),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from flask import Flask\n", {"flask"}),
        ("import importlib\nmod = importlib.import_module('sqlalchemy.orm')\n", {"sqlalchemy"}),
        ("db = __import__('flask_sqlalchemy')\n", {"flask_sqlalchemy"}),
    ],
)
def test_forbidden_core_imports_checker(source, forbidden):
    assert forbidden_core_imports(source, "scoring") == forbidden


@pytest.mark.parametrize(
    ("source", "forbidden"),
    [
        ("import json\nimport requests\nfrom scoring.health import Band\n", set()),
        ("from flask import current_app\n", {"flask"}),
        ("import sqlalchemy as sa\n", {"sqlalchemy"}),
        ("from app.pipeline.plays import run\n", {"app"}),
        ("from . import render\n", set()),
    ],
)
def test_forbidden_alerts_imports_checker(source, forbidden):
    assert forbidden_alerts_imports(source) == forbidden


def test_violations_are_reported_per_file(tmp_path):
    package = tmp_path / "scoring"
    package.mkdir()
    (package / "clean.py").write_text("import numpy\n", encoding="utf-8")
    (package / "leaky.py").write_text("import flask\n", encoding="utf-8")
    assert violations("scoring", forbidden_core_imports, tmp_path) == {str(Path("scoring") / "leaky.py"): {"flask"}}
    assert violations("playbooks", forbidden_core_imports, tmp_path) == {}  # absent folder: nothing to check
