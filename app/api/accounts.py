"""Accounts: the portfolio list with latest scores, and one account with drivers and history."""

from __future__ import annotations

from flask_smorest import Blueprint

bp = Blueprint("accounts", __name__, url_prefix="/api/v1/accounts", description="Accounts and their health")
