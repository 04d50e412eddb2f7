"""Jinja filters of the pages, and the small SVG charts drawn on the server (no script needed)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from flask import Flask
from jinja2 import Undefined
from markupsafe import Markup, escape

DASH = "\u2013"  # what a missing value shows


def _missing(value: Any) -> bool:
    """None, or a field the page's data does not have (an account never scored has no health)."""
    return value is None or isinstance(value, Undefined)


def money(value: Any) -> str:
    if _missing(value):
        return DASH
    amount = float(value)
    if abs(amount) >= 1_000_000:
        return f"${amount / 1_000_000:.1f}M"
    if abs(amount) >= 1_000:
        return f"${amount / 1_000:.0f}k"
    return f"${amount:.0f}"


def number(value: Any, digits: int = 1) -> str:
    return DASH if _missing(value) else f"{float(value):.{digits}f}"


def signed(value: Any) -> str:
    return DASH if _missing(value) else f"{float(value):+.1f}"


def percent(value: Any) -> str:
    return DASH if _missing(value) else f"{float(value) * 100:.0f}%"


def day(value: Any) -> str:
    if _missing(value):
        return DASH
    if isinstance(value, str):
        return value[:10]
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def sparkline(points: Sequence[float], width: int = 120, height: int = 28) -> Markup:
    """A score line (0-100) as inline SVG: the watchlist draws 50 of them without a script."""
    if len(points) < 2:
        return Markup(f'<span class="muted">{DASH}</span>')
    step = width / (len(points) - 1)
    coords = " ".join(f"{i * step:.1f},{height - score / 100 * height:.1f}" for i, score in enumerate(points))
    first, last = points[0], points[-1]
    trend = "up" if last > first else "down" if last < first else "flat"
    label = escape(f"Score over {len(points)} days: {first:.0f} to {last:.0f}")
    return Markup(
        f'<svg class="spark spark-{trend}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{label}"><polyline points="{coords}" fill="none" stroke-width="1.5"/></svg>'
    )


def driver_bars(drivers: Sequence[dict[str, Any]], width: int = 560) -> Markup:
    """The drivers as a horizontal bar chart in SVG: each measure's signed contribution, with its label."""
    if not drivers:
        return Markup('<p class="muted">No drivers: the account has no score yet.</p>')
    rows = sorted(drivers, key=lambda d: float(d.get("contribution") or 0))
    top = max((abs(float(d.get("contribution") or 0)) for d in rows), default=1.0) or 1.0
    label_w, bar_h, gap = 200, 18, 6
    half = (width - label_w) / 2
    middle = label_w + half
    height = len(rows) * (bar_h + gap)
    parts = [
        f'<svg class="bars" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Drivers: each measure\'s contribution to the score">'
    ]
    for i, driver in enumerate(rows):
        value = float(driver.get("contribution") or 0)
        length = abs(value) / top * (half - 30)
        y = i * (bar_h + gap)
        x = middle if value >= 0 else middle - length
        kind = "pos" if value >= 0 else "neg"
        name = escape(str(driver.get("label") or driver.get("measure")))
        parts.append(f'<text x="0" y="{y + 13}" class="bar-label">{name}</text>')
        parts.append(f'<rect class="bar-{kind}" x="{x:.1f}" y="{y}" width="{max(length, 1):.1f}" height="{bar_h}"/>')
        # The value beside the bar on the axis' right (a negative bar's left end would meet the labels).
        tx = middle + (length if value >= 0 else 0) + 4
        parts.append(f'<text x="{tx:.1f}" y="{y + 13}" class="bar-value">{value:+.1f}</text>')
    parts.append(f'<line x1="{middle}" x2="{middle}" y1="0" y2="{height}" class="bar-axis"/></svg>')
    return Markup("".join(parts))


def register_filters(app: Flask) -> None:
    app.jinja_env.filters.update(
        money=money,
        number=number,
        signed=signed,
        percent=percent,
        day=day,
        sparkline=sparkline,
        driver_bars=driver_bars,
    )
