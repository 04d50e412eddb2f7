"""Layering: the pure core (scoring/, playbooks/) and alerts/ import nothing from the web and DB shell,
and within app/ the API schemas, the services, the daily run's pipeline and the sources keep to their rooms."""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

#: What the pure core may import besides the standard library.
CORE_ALLOWED = frozenset({"numpy", "sklearn", "scipy", "joblib", "threadpoolctl", "scoring", "playbooks"})
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


# --- the rooms of app/: schemas, services, the daily run's pipeline and the sources ---------------

#: Imports each room of ``app/`` may not have, as module paths (a module counts with its submodules).
ROOM_FORBIDDEN = {
    "app/schemas": ("app.services", "app.pipeline"),  # the API's shapes know no use case
    "app/services": ("app.schemas", "app.api"),  # use cases take loaded data, never an API schema
    "app/pipeline": ("app.schemas", "app.api"),
    "app/sources": ("app.services",),  # adapters: what they share with the services is app.records
}


def imported_module_paths(source: str, package: str) -> set[str]:
    """Dotted paths of every module ``source`` imports; ``from a.b import c`` counts as ``a.b`` and
    ``a.b.c`` (``c`` may be a module). Relative imports resolve against ``package``, the dotted
    package of the importing module."""
    paths: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            paths.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            paths.add(base)
            paths.update(f"{base}.{alias.name}" for alias in node.names)
    return paths


def forbidden_paths(paths: set[str], forbidden: tuple[str, ...]) -> set[str]:
    return {path for path in paths for prefix in forbidden if path == prefix or path.startswith(prefix + ".")}


def room_violations(room: str, forbidden: tuple[str, ...], root: Path = ROOT) -> dict[str, set[str]]:
    """Forbidden imports per file of ``room`` (a folder under ``root``)."""
    found = {}
    for path in sorted((root / room).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        package = ".".join(parts if parts[-1] == "__init__" else parts[:-1]).removesuffix(".__init__")
        bad = forbidden_paths(imported_module_paths(path.read_text(encoding="utf-8"), package), forbidden)
        if bad:
            found[str(path.relative_to(root))] = bad
    return found


def test_schemas_never_import_services_or_the_pipeline():
    assert room_violations("app/schemas", ROOM_FORBIDDEN["app/schemas"]) == {}


@pytest.mark.parametrize("room", ["app/services", "app/pipeline"])
def test_services_and_pipeline_never_import_schemas_or_the_api(room):
    assert room_violations(room, ROOM_FORBIDDEN[room]) == {}


def test_sources_never_import_services():
    assert room_violations("app/sources", ROOM_FORBIDDEN["app/sources"]) == {}


def test_room_checks_see_the_rooms():
    # A moved folder would pass every check: make sure the walk finds files that import app modules.
    for room in ROOM_FORBIDDEN:
        assert any((ROOT / room).rglob("*.py")), room
    source = (ROOT / "app" / "services" / "accounts.py").read_text(encoding="utf-8")
    assert "app.models" in imported_module_paths(source, "app.services")


@pytest.mark.parametrize(
    ("source", "package", "found"),
    [
        (
            "from app.schemas.plays import PlaySchema\n",
            "app.services",
            {"app.schemas.plays", "app.schemas.plays.PlaySchema"},
        ),
        ("from app import schemas\n", "app.services", {"app.schemas"}),
        ("import app.api.body\n", "app.services", {"app.api.body"}),
        ("from ..schemas import ApiSchema\n", "app.services", {"app.schemas", "app.schemas.ApiSchema"}),
        ("from ...schemas import x\n", "app.services.ingest", {"app.schemas", "app.schemas.x"}),
        (
            "def f():\n    from app.api.body import load_with\n",
            "app.services",
            {"app.api.body", "app.api.body.load_with"},
        ),
        ("from app.records import KINDS\nfrom app.schemasx import y\n", "app.services", set()),
        ("from app.services.common import page_of\n", "app.services", set()),
    ],
)
def test_forbidden_paths_checker(source, package, found):
    paths = imported_module_paths(source, package)
    assert forbidden_paths(paths, ("app.schemas", "app.api")) == found


def test_room_violations_are_reported_per_file(tmp_path):
    room = tmp_path / "app" / "sources"
    room.mkdir(parents=True)
    (room / "clean.py").write_text("from app.records import KINDS\n", encoding="utf-8")
    (room / "leaky.py").write_text("from app.services.ingest.records import KINDS\n", encoding="utf-8")
    assert room_violations("app/sources", ("app.services",), tmp_path) == {
        str(Path("app") / "sources" / "leaky.py"): {"app.services.ingest.records", "app.services.ingest.records.KINDS"}
    }
