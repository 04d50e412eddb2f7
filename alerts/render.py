"""One message, three formats: Slack Block Kit, email (text and HTML) and a JSON webhook body.

Each message is first laid out once as a neutral document (a title, facts, sections of lines,
links) and then written out per format, so Slack and email always say the same thing. Text that
comes from data (account names, rule names, trigger values) is escaped for each format: Slack
mrkdwn treats ``<`` ``>`` ``&`` as markup (``<!channel>`` pings everyone) and HTML would run
``<script>``.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerts.base import AccountAlert, AlertKind, Digest, DigestAccount, EventLine, Message

#: Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
SLACK_MAX_BLOCKS = 50
SLACK_MAX_SECTION_TEXT = 3000
SLACK_MAX_HEADER_TEXT = 150
SLACK_MAX_FIELD_TEXT = 2000
SLACK_MAX_FIELDS = 10
SLACK_MAX_BUTTON_TEXT = 75
#: Slack shows the top-level ``text`` in notifications; keep it a short summary.
SLACK_MAX_FALLBACK_TEXT = 3000
#: Lines listed per section in every format; the rest are counted ("... and N more").
MAX_LINES_PER_SECTION = 100
#: Characters of one event's trigger values.
MAX_DETAIL_CHARS = 200
#: Characters of one line of text (an absurdly long account name must not eat a whole section).
MAX_LINE_CHARS = 1000

WEBHOOK_BODY_VERSION = 1


@dataclass(frozen=True, slots=True)
class EmailContent:
    """An email's subject, plain-text body and HTML body."""

    subject: str
    text: str
    html: str


# --- the neutral document -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Span:
    """A piece of a line: plain text, bold, or a link."""

    text: str
    url: str | None = None
    bold: bool = False


@dataclass(frozen=True, slots=True)
class _Line:
    spans: tuple[_Span, ...]
    sub: tuple[str, ...] = ()  # indented lines under it (a play's tasks)


@dataclass(frozen=True, slots=True)
class _Section:
    title: str
    lines: tuple[_Line, ...]
    more: int = 0  # lines not listed


@dataclass(frozen=True, slots=True)
class _Doc:
    title: str  # one line: Slack header, email subject
    intro: tuple[str, ...] = ()
    facts: tuple[tuple[str, str], ...] = ()
    sections: tuple[_Section, ...] = ()
    links: tuple[tuple[str, str, bool], ...] = ()  # (label, url, primary)
    footer: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _number(value: float) -> str:
    """A compact number: ``42``, ``0.125``, ``1,234.5``; never ``-0``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    text = f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.1f}"
    return "0" if text in ("-0", "0") else text


def points(value: float) -> str:
    """A score or a number of points for people: one decimal at most, ``40`` not ``40.0``, never ``-0``."""
    rounded = round(float(value), 1)
    if rounded == 0:
        return "0"
    return f"{rounded:,.1f}".removesuffix(".0")


def signed_points(value: float) -> str:
    """A change in points: ``+1.5``, ``-8``, and ``0`` (no sign) for what rounds to nothing."""
    text = points(value)
    return text if text == "0" or text.startswith("-") else "+" + text


def format_moment(value: str, zone: str = "UTC") -> str:
    """An ISO timestamp for people, in the time zone ``zone`` (an IANA name; UTC when unknown):
    ``Thu 3 Dec 2026, 09:00 CET``. Text that is not a timestamp is returned as it is."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return value
    try:
        tz: dt.tzinfo = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        tz = dt.UTC
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    local = moment.astimezone(tz)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local.tzname() or zone}"


def _value(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def render_detail(detail: Mapping[str, Any]) -> str:
    """An event's trigger values on one short line: ``usage drop ratio: 0.45, days: 30``."""
    text = ", ".join(f"{str(k).replace('_', ' ')}: {_value(v)}" for k, v in detail.items())
    return _clip(_one_line(text), MAX_DETAIL_CHARS)


def format_score(score: float | None, change_7d: float | None, change_30d: float | None = None) -> str:
    """``42.1 (-8.3 in 7 days)``, ``40 (0 in 7 days)``; ``no score`` when there is none."""
    if score is None:
        return "no score"
    changes = [f"{signed_points(c)} in {days} days" for c, days in ((change_7d, 7), (change_30d, 30)) if c is not None]
    return points(score) + (f" ({', '.join(changes)})" if changes else "")


def format_arr(arr: float) -> str:
    return f"{arr:,.0f}"


def _pretty(code: str | None) -> str:
    return code.replace("_", " ") if code else "n/a"


def _event_line(event: EventLine, *, with_account: bool = False) -> _Line:
    spans = []
    if with_account and event.account_name:
        spans.append(_Span(_clip(_one_line(event.account_name), 200) + ": ", bold=True))
    spans.append(_Span(_clip(_one_line(event.rule_name), 200), bold=not with_account))
    spans.append(_Span(f" ({event.severity} {event.kind}, {event.day})"))
    detail = render_detail(event.detail)
    if detail:
        spans.append(_Span(f": {detail}"))
    return _Line(tuple(spans))


def _capped(title: str, lines: Sequence[_Line], total: int | None = None) -> _Section:
    """A section listing at most ``MAX_LINES_PER_SECTION`` lines; ``total`` counts lines that
    were left out before they reached us (a digest truncated to its top accounts)."""
    shown = tuple(lines[:MAX_LINES_PER_SECTION])
    count = max(len(lines), total or 0)
    return _Section(title, shown, more=count - len(shown))


def _headline(alert: AccountAlert) -> str:
    """What happened, in a few words."""
    if alert.kind == AlertKind.ESCALATION:
        return "not acknowledged"
    if alert.events:
        first = _one_line(alert.events[0].rule_name)
        rest = len(alert.events) - 1
        return first + (f" and {rest} more event{'s' if rest > 1 else ''}" if rest else "")
    if alert.plays:
        first = _one_line(alert.plays[0].name)
        rest = len(alert.plays) - 1
        return f"play started: {first}" + (f" and {rest} more" if rest else "")
    return "health alert"


def _hours(hours: float) -> str:
    return _number(round(hours, 1))


def _account_doc(alert: AccountAlert) -> _Doc:
    name = _one_line(alert.account_name)
    intro: list[str] = []
    if alert.kind == AlertKind.ESCALATION:
        hours = "" if alert.unacknowledged_hours is None else f" for {_hours(alert.unacknowledged_hours)} hours"
        intro.append(f"The alert about {name} was not acknowledged{hours}.")
    facts = (
        ("Stage", _pretty(alert.stage)),
        ("Band", _pretty(alert.band)),
        ("Score", format_score(alert.score, alert.change_7d)),
        ("ARR", format_arr(alert.arr)),
        ("Renewal", alert.renewal_date or "n/a"),
        ("CSM", alert.owner or "unassigned"),
        ("Segment", alert.segment or "n/a"),
    )
    sections = []
    if alert.events:
        sections.append(_capped("Events", [_event_line(e) for e in alert.events]))
    if alert.drivers:
        lines = [
            _Line((_Span(_clip(_one_line(d.label), 200)), _Span(f": {signed_points(d.contribution)} points")))
            for d in alert.drivers
        ]
        sections.append(_capped("Top drivers", lines))
    if alert.plays:
        lines = [
            _Line(
                (_Span(_clip(_one_line(p.name), 200), bold=True),),
                tuple(
                    _clip(
                        f"{_one_line(t.title)} ({t.type}, due {t.due_on}, owner {t.owner or 'unassigned'})",
                        MAX_LINE_CHARS,
                    )
                    for t in p.tasks
                ),
            )
            for p in alert.plays
        ]
        sections.append(_capped("Plays started", lines))
    links = [("Open account", alert.account_url, False)]
    if alert.ack_url:
        links.append(("Acknowledge", alert.ack_url, True))
    prefix = "Escalation: " if alert.kind == AlertKind.ESCALATION else ""
    return _Doc(
        title=_one_line(f"{prefix}{name}: {_headline(alert)}"),
        intro=tuple(intro),
        facts=facts,
        sections=tuple(sections),
        links=tuple(links),
        extra={"account_id": alert.account_id, "account_url": alert.account_url, "ack_url": alert.ack_url},
    )


def _digest_account_line(account: DigestAccount) -> _Line:
    parts = [
        _pretty(account.band),
        format_score(account.score, account.change_7d, account.change_30d),
        f"ARR {format_arr(account.arr)}",
    ]
    if account.renewal_date:
        parts.append(f"renews {account.renewal_date}")
    if account.owner:
        parts.append(f"CSM {account.owner}")
    text = " — " + ", ".join(parts)
    if account.reasons:
        text += ": " + "; ".join(_one_line(r) for r in account.reasons)
    return _Line(
        (
            _Span(_clip(_one_line(account.account_name), 200), url=account.account_url),
            _Span(_clip(text, MAX_LINE_CHARS)),
        )
    )


def _held_line(alert: AccountAlert) -> _Line:
    return _Line(
        (
            _Span(_clip(_one_line(alert.account_name), 200), url=alert.account_url),
            _Span(f": {_clip(_headline(alert), 300)} — {format_score(alert.score, alert.change_7d)}"),
        )
    )


def _digest_doc(digest: Digest) -> _Doc:
    at_risk_total = max(digest.at_risk_total, len(digest.at_risk))
    zone = digest.time_zone
    intro = (f"Since {format_moment(digest.since, zone)} until {format_moment(digest.until, zone)}.",)
    sections = [
        _capped(
            f"At-risk accounts ({at_risk_total})",
            [_digest_account_line(a) for a in digest.at_risk],
            digest.at_risk_total,
        ),
        _capped(
            f"Changes since the last digest ({max(digest.changes_total, len(digest.changes))})",
            [_event_line(e, with_account=True) for e in digest.changes],
            digest.changes_total,
        ),
    ]
    if digest.held:
        held_total = max(digest.held_total, len(digest.held))
        sections.append(
            _capped(
                f"Alerts held back by the daily budget ({held_total})",
                list(map(_held_line, digest.held)),
                held_total,
            )
        )
    links = [("Open dashboard", digest.dashboard_url, False)] if digest.dashboard_url else []
    if digest.held_url and digest.held_total > len(digest.held):
        links.append(("All held alerts", digest.held_url, False))
    return _Doc(
        title=_one_line(f"Health digest for {digest.recipient_name}: {at_risk_total} at-risk accounts"),
        intro=intro,
        sections=tuple(sections),
        links=tuple(links),
        extra={"recipient_name": digest.recipient_name},
    )


def _document(message: Message) -> _Doc:
    return _digest_doc(message) if isinstance(message, Digest) else _account_doc(message)


def _more(count: int) -> str:
    return f"... and {count} more"


# --- Slack ----------------------------------------------------------------------------------


def slack_escape(text: str) -> str:
    """Text safe inside Slack mrkdwn: ``&``, ``<`` and ``>`` are its only control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_url(url: str) -> str:
    # a "|" or ">" in a URL would end Slack's <url|label> link early
    return url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")


def _slack_span(span: _Span) -> str:
    text = slack_escape(span.text)
    if span.url:
        return f"<{_slack_url(span.url)}|{text}>"
    return f"*{text}*" if span.bold and text.strip() else text


def _slack_line(line: _Line) -> str:
    out = "• " + "".join(_slack_span(s) for s in line.spans)
    for sub in line.sub:
        out += "\n      ◦ " + slack_escape(sub)
    return out


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _slack_section_blocks(section: _Section) -> list[tuple[dict[str, Any], int]]:
    """The section as blocks of at most ``SLACK_MAX_SECTION_TEXT`` characters, each paired with
    the number of lines it carries (for counting what a cut leaves out)."""
    blocks: list[tuple[dict[str, Any], int]] = []
    reserve = len(_more(10**9)) + 1
    chunk = f"*{slack_escape(section.title)}*"
    count = 0
    for line in section.lines:
        text = _clip(_slack_line(line), SLACK_MAX_SECTION_TEXT - reserve - 1)
        if len(chunk) + 1 + len(text) > SLACK_MAX_SECTION_TEXT - reserve:
            blocks.append((_mrkdwn(chunk), count))
            chunk, count = text, 0
        else:
            chunk = f"{chunk}\n{text}"
        count += 1
    if section.more:
        chunk += "\n" + _more(section.more)
    blocks.append((_mrkdwn(chunk), count + section.more))
    return blocks


def slack_payload(message: Message) -> dict[str, Any]:
    """An incoming-webhook body: ``text`` (the notification and fallback) and Block Kit ``blocks``.

    Keeps within Block Kit's limits (50 blocks, 3000 characters per section, 150 per header):
    what does not fit is cut and counted as "... and N more".
    """
    doc = _document(message)
    head: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(doc.title, SLACK_MAX_HEADER_TEXT), "emoji": False},
        }
    ]
    for line in doc.intro:
        head.append(_mrkdwn(_clip(slack_escape(line), SLACK_MAX_SECTION_TEXT)))
    if doc.facts:
        head.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": _clip(f"*{label}*\n{slack_escape(value)}", SLACK_MAX_FIELD_TEXT)}
                    for label, value in doc.facts[:SLACK_MAX_FIELDS]
                ],
            }
        )
    body: list[tuple[dict[str, Any], int]] = []
    for section in doc.sections:
        body.extend(_slack_section_blocks(section))
    tail: list[dict[str, Any]] = []
    if doc.links:
        tail.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": _clip(label, SLACK_MAX_BUTTON_TEXT)},
                        "url": url,
                        "action_id": label.lower().replace(" ", "_"),
                        **({"style": "primary"} if primary else {}),
                    }
                    for label, url, primary in doc.links
                ],
            }
        )
    room = SLACK_MAX_BLOCKS - len(head) - len(tail)
    if len(body) > room:
        kept, dropped = body[: room - 1], body[room - 1 :]
        left = sum(count for _, count in dropped)
        cut = {"type": "context", "elements": [{"type": "mrkdwn", "text": _more(left) if left else "..."}]}
        body = [*kept, (cut, 0)]
    blocks = head + [block for block, _ in body] + tail
    return {"text": _clip(_plain_summary(doc), SLACK_MAX_FALLBACK_TEXT), "blocks": blocks}


def _plain_summary(doc: _Doc) -> str:
    """The notification text: the title and the facts, escaped for mrkdwn."""
    parts = [doc.title, *doc.intro]
    if doc.facts:
        parts.append(", ".join(f"{label}: {value}" for label, value in doc.facts))
    return slack_escape("\n".join(parts))


# --- email ----------------------------------------------------------------------------------


def _text_line(line: _Line) -> str:
    out = "- " + "".join(s.text + (f" <{s.url}>" if s.url else "") for s in line.spans)
    for sub in line.sub:
        out += "\n    * " + sub
    return out


def _text_body(doc: _Doc) -> str:
    out = [doc.title, "=" * min(len(doc.title), 78), ""]
    if doc.intro:
        out.extend([*doc.intro, ""])
    if doc.facts:
        width = max(len(label) for label, _ in doc.facts)
        out.extend(f"{label.ljust(width)}  {value}" for label, value in doc.facts)
        out.append("")
    for section in doc.sections:
        out.append(section.title)
        out.extend(_text_line(line) for line in section.lines)
        if not section.lines and not section.more:
            out.append("- none")
        if section.more:
            out.append(_more(section.more))
        out.append("")
    out.extend(f"{label}: {url}" for label, url, _ in doc.links)
    return "\n".join(out).rstrip() + "\n"


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def _html_span(span: _Span) -> str:
    text = html.escape(span.text)
    if span.url:
        return f'<a href="{_attr(span.url)}">{text}</a>'
    return f"<strong>{text}</strong>" if span.bold else text


def _html_lines(lines: Iterable[_Line]) -> str:
    items = []
    for line in lines:
        sub = "".join(f"<li>{html.escape(s)}</li>" for s in line.sub)
        items.append("<li>" + "".join(map(_html_span, line.spans)) + (f"<ul>{sub}</ul>" if sub else "") + "</li>")
    return "".join(items)


def _html_body(doc: _Doc) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"><title>' + html.escape(doc.title) + "</title></head>",
        '<body style="font-family: sans-serif;">',
        f"<h2>{html.escape(doc.title)}</h2>",
    ]
    out.extend(f"<p>{html.escape(line)}</p>" for line in doc.intro)
    if doc.facts:
        rows = "".join(
            f'<tr><th align="left" style="padding-right: 1em;">{html.escape(label)}</th>'
            f"<td>{html.escape(value)}</td></tr>"
            for label, value in doc.facts
        )
        out.append(f"<table>{rows}</table>")
    for section in doc.sections:
        out.append(f"<h3>{html.escape(section.title)}</h3>")
        more = f"<li>{html.escape(_more(section.more))}</li>" if section.more else ""
        empty = "<li>none</li>" if not section.lines and not section.more else ""
        out.append(f"<ul>{_html_lines(section.lines)}{more}{empty}</ul>")
    if doc.links:
        out.append(
            "<p>"
            + " | ".join(f'<a href="{_attr(url)}">{html.escape(label)}</a>' for label, url, _ in doc.links)
            + "</p>"
        )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def email_content(message: Message) -> EmailContent:
    """The email for ``message``: a one-line subject, and the same content as the Slack message as
    plain text and as HTML (every value escaped)."""
    doc = _document(message)
    return EmailContent(subject=_clip(doc.title, 200), text=_text_body(doc), html=_html_body(doc))


# --- webhook --------------------------------------------------------------------------------


def webhook_body(message: Message) -> dict[str, Any]:
    """The JSON body of a generic webhook: ``type`` (immediate | escalation | digest), a one-line
    ``summary``, ``version`` of this body's shape, the useful links, and the whole ``message``
    (``to_dict``; ``alerts.base.message_from_dict`` reads it back)."""
    doc = _document(message)
    return {
        "type": message.kind.value,
        "version": WEBHOOK_BODY_VERSION,
        "summary": doc.title,
        **{k: v for k, v in doc.extra.items() if v is not None},
        "message": message.to_dict(),
    }
