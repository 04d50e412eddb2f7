"""The pages' tests: a small scored demo portfolio, people of every role who sign in, and a
test client signing in through the real form (CSRF token included)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import sessionmaker

from app.demo.seed import seed_demo
from app.models import Account, Alert, Role, Task, TaskStatus, User
from app.pipeline.run import run_scoring
from app.services.users import set_password

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Portfolio:
    """Who is who in the scored demo portfolio: emails by role, and accounts by book."""

    emails: dict[str, str] = field(default_factory=dict)
    own_account: int = 0  # an account of the CSM's book (and so the manager's team)
    other_account: int = 0  # an account of a CSM outside the manager's team
    csm_owner: str = ""


def make_portfolio(engine: sa.Engine, *, accounts: int = 30, history_days: int = 31) -> Portfolio:
    """Seed demo accounts, score their last ``history_days`` days, and give every role a person:
    the CSM owns some accounts, the manager manages every owner but one (the outsider)."""
    today = dt.datetime.now(dt.UTC).date()
    factory = sessionmaker(bind=engine)
    with factory.begin() as session:
        seed_demo(session, accounts=accounts, days=120, as_of=today)
    for back in range(history_days - 1, -1, -1):
        with factory.begin() as session:
            run_scoring(session, as_of=today - dt.timedelta(days=back))
    now = dt.datetime.now(dt.UTC)
    found = Portfolio()
    with factory.begin() as session:
        owners = sorted(o for o in session.scalars(sa.select(Account.owner).distinct()) if o)
        # The CSM: the first owner with an account that has an open task and an alert awaiting
        # acknowledgement (the browser test works one), else the first owner.
        working = session.scalars(
            sa.select(Account.owner)
            .join(Task, Task.account_id == Account.id)
            .join(Alert, Alert.account_id == Account.id)
            .where(Task.status == TaskStatus.OPEN, Alert.requires_ack, Alert.acknowledged_at.is_(None))
            .order_by(Account.owner)
            .limit(1)
        ).first()
        csm = working if working and working != owners[-1] else owners[0]
        outsider = owners[-1]
        manager = set_password(session, "maya@example.com", PASSWORD, role=Role.MANAGER, now=now)
        for owner in owners:
            user = set_password(session, owner, PASSWORD, role=Role.CSM, now=now)
            user.manager_id = None if owner == outsider else manager.id
        set_password(session, "admin@example.com", PASSWORD, role=Role.ADMIN, now=now)
        set_password(session, "vera@example.com", PASSWORD, role=Role.VIEWER, now=now)
        found.emails = {"csm": csm, "manager": "maya@example.com", "admin": "admin@example.com",
                        "viewer": "vera@example.com", "outsider": outsider}  # fmt: skip
        found.csm_owner = csm
        found.own_account = session.scalar(sa.select(sa.func.min(Account.id)).where(Account.owner == csm)) or 0
        found.other_account = session.scalar(sa.select(sa.func.min(Account.id)).where(Account.owner == outsider)) or 0
        session.flush()
    return found


def csrf_token(client: FlaskClient, path: str = "/sign-in") -> str:
    """The CSRF token of the client's session, read from a page's form."""
    match = _CSRF.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> FlaskClient:
    token = csrf_token(client)
    response = client.post("/sign-in", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def user_named(engine: sa.Engine, email: str) -> User:
    with sessionmaker(bind=engine, expire_on_commit=False).begin() as session:
        user = session.scalar(sa.select(User).where(User.email == email))
        assert user is not None
        return user
