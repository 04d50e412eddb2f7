"""Start-up: the web app and the CLI import no scikit-learn or scipy (about two seconds), no
alembic, no Authlib client with its joserfc and cryptography (about 0.1 s, needed by SSO
sign-ins only), no APScheduler scheduler and no demo generators (``flask scheduler run`` and
``flask demo`` import them) until a request or command needs them. Each check runs in a fresh interpreter, so
what the test process already imported cannot hide an import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "sklearn", "scipy", "alembic", "authlib.integrations.flask_client", "cryptography", "apscheduler.schedulers",
    "app.demo.seed",
)  # fmt: skip

_REPORT = """
import json, sys
{body}
print(json.dumps(sorted(name for name in {heavy!r} if name in sys.modules)))
"""


def _loaded_after(body: str, tmp_path: Path, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'startup.db'}"}
    code = _REPORT.format(body=body, heavy=heavy)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def test_create_app_imports_no_learning_code(tmp_path: Path) -> None:
    assert _loaded_after("from app import create_app\ncreate_app()", tmp_path) == []


def test_the_openapi_document_is_built_on_first_read_and_still_complete(tmp_path: Path) -> None:
    body = (
        "from app import create_app\n"
        "app = create_app()\n"
        "doc = app.test_client().get('/api/v1/openapi.json').get_json()\n"
        "assert '/api/v1/accounts' in doc['paths'], sorted(doc['paths'])[:5]\n"
        "assert 'accounts' in [t['name'] for t in doc['tags']]\n"
    )
    assert _loaded_after(body, tmp_path) == []


@pytest.mark.parametrize(
    "args",
    [["--help"], ["routes"], ["score", "--help"], ["analysis", "--help"]],
    ids=["help", "routes", "score-help", "analysis-help"],
)
def test_cli_commands_that_do_not_learn_import_no_learning_code(args: list[str], tmp_path: Path) -> None:
    body = (
        "from flask.cli import FlaskGroup\n"
        "from app import create_app\n"
        "cli = FlaskGroup(create_app=create_app)\n"
        f"try:\n    cli.main(args={args!r}, prog_name='flask', standalone_mode=False)\n"
        "except SystemExit:\n    pass\n"
    )
    assert _loaded_after(body, tmp_path) == []


def test_the_scoring_run_without_a_churn_model_imports_no_learning_code(tmp_path: Path) -> None:
    body = (
        "import datetime as dt\n"
        "from sqlalchemy.orm import sessionmaker\n"
        "from app import migrate\n"
        "from app.db import make_engine\n"
        "from app.demo.seed import seed_demo\n"
        "from app.pipeline.run import run_scoring\n"
        f"engine = make_engine('sqlite:///{tmp_path / 'run.db'}')\n"
        "migrate.upgrade(engine)\n"
        "with sessionmaker(bind=engine).begin() as s:\n"
        "    seed_demo(s, accounts=20, days=10, seed=1, as_of=dt.date(2026, 6, 30))\n"
        "with sessionmaker(bind=engine).begin() as s:\n"
        "    assert run_scoring(s, as_of=dt.date(2026, 6, 30)).accounts_scored > 0\n"
    )
    assert _loaded_after(body, tmp_path, heavy=("sklearn", "scipy")) == []
