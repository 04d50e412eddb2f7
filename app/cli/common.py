"""What several command groups share: the date parameter and how a domain error ends a command."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

from app.errors import DomainError

P = ParamSpec("P")
R = TypeVar("R")


class DateParam(click.ParamType):
    name = "YYYY-MM-DD"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a date in the form YYYY-MM-DD", param, ctx)


DATE = DateParam()


def exit_cleanly_on_domain_error(command: Callable[P, R]) -> Callable[P, R]:
    """A domain error (a conflict, bad input) ends the command with its message and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc

    return wrapper
