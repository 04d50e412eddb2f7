"""Where an alert may be sent: webhook URL checks against server-side request forgery, and redaction.

An admin configures a webhook URL; the service then POSTs to it from inside the network. Without
these checks that URL could point at the cloud metadata service (169.254.169.254), a database on
10.x or the service itself on 127.0.0.1. ``check_webhook_url`` runs when a URL is configured (a
readable reason for the API's 422) and ``check_url_at_send`` runs before every send, because a
host name that resolved to a public address when it was configured can resolve to a private one
later (DNS rebinding). It returns the approved addresses, and the HTTP client connects to one of
those (``alerts/transport.py``) instead of resolving the name a second time, which a hostile DNS
server could answer differently.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from alerts.base import AlertDeliveryFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: ``(host, port) -> addresses`` (text, best first), raising ``OSError`` when the name cannot be
#: resolved. The channels take one so that tests can answer for a name without a DNS server.
Resolver = Callable[[str, int], Sequence[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``getaddrinfo`` gives for ``host``, in its order (RFC 6724 preference)."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def is_public_address(address: IPAddress) -> bool:
    """True when ``address`` is a globally routable unicast address.

    An IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) is judged by the IPv4 address it maps to,
    since connecting to it reaches that address.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _host_address(host: str) -> IPAddress | None:
    """The IP address ``host`` spells, or None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _looks_numeric(host: str) -> bool:
    """Hosts that the C resolver reads as an IPv4 address although ``ipaddress`` does not:
    ``2130706433`` (127.0.0.1 as one number), ``0x7f.1``, ``0177.0.0.1``, ``127.1``."""
    parts = host.split(".")
    if not all(parts):
        return False
    for part in parts:
        text = part.lower()
        if text.startswith("0x"):
            text = text[2:]
            if not text or any(c not in "0123456789abcdef" for c in text):
                return False
        elif not text.isdigit():
            return False
    return True


def _host_allowed(host: str, allowed_hosts: Collection[str]) -> bool:
    if not allowed_hosts:
        return True
    for entry in allowed_hosts:
        pattern = entry.lower().rstrip(".")
        if pattern.startswith("*."):
            # "*.example.com" allows any subdomain, not example.com itself nor evil-example.com
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def _split(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None
    return parts


def check_webhook_url(url: str, *, allowed_hosts: Collection[str], allow_insecure: bool = False) -> str | None:
    """None when ``url`` is fine to POST alerts to, else a readable reason.

    Rules: https (http only with ``allow_insecure``), a host, no user name or password in the URL,
    the host on ``allowed_hosts`` (exact names or ``*.example.com`` wildcards; an empty collection
    allows any public host), and a host given as an IP address must be public (not private,
    loopback, link-local, multicast, reserved or unspecified, IPv4-mapped IPv6 included). A host
    that is only digits and dots or hex is refused: resolvers read ``2130706433`` as 127.0.0.1.
    ``allow_insecure`` (tests only) allows http and loopback addresses, never other private ones.
    Names are not resolved here: ``check_resolved`` does that at send time.
    """
    if not isinstance(url, str) or not url:
        return "must be a URL"
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "must not contain spaces or control characters"
    parts = _split(url)
    if parts is None:
        return "is not a valid URL"
    if parts.scheme.lower() != "https" and not (allow_insecure and parts.scheme.lower() == "http"):
        return "must use https"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "must not contain a user name or password"
    return _host_problem((parts.hostname or "").rstrip("."), allowed_hosts, allow_insecure)


def _host_problem(host: str, allowed_hosts: Collection[str], allow_insecure: bool) -> str | None:
    if not host:
        return "must have a host"
    address = _host_address(host)
    if address is None and _looks_numeric(host):
        return f"host {host!r} is a numeric address in a form that is not allowed"
    local_name = host == "localhost" or host.endswith(".localhost")
    if local_name or (address is not None and not is_public_address(address)):
        # tests run their fake receivers on 127.0.0.1; nothing else private is ever allowed
        loopback = local_name or (address is not None and _is_loopback(address))
        if not (allow_insecure and loopback):
            return f"host {host} is not a public address"
    if not _host_allowed(host, allowed_hosts):
        return f"host {host} is not on the allowed hosts list"
    return None


def _is_loopback(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def check_resolved(
    host: str, port: int, *, resolver: Resolver | None = None, allow_loopback: bool = False
) -> tuple[IPAddress, ...]:
    """Resolve ``host`` and return its addresses (best first, without repeats), or raise
    ``AlertDeliveryFailed(retryable=False)`` if any of them is not public (DNS rebinding;
    checked right before a send). ``allow_loopback`` (tests only) also accepts loopback addresses.

    A name that cannot be resolved right now raises a retryable ``AlertDeliveryFailed``.
    ``resolver`` defaults to ``system_resolver``.
    """
    try:
        answers = (resolver or system_resolver)(host, port)
    except (OSError, UnicodeError) as exc:
        raise AlertDeliveryFailed(f"cannot resolve {host}: {exc}", retryable=True) from exc
    addresses: list[IPAddress] = []
    for answer in answers:
        address = _host_address(str(answer))
        if address is None or not (is_public_address(address) or (allow_loopback and _is_loopback(address))):
            raise AlertDeliveryFailed(f"{host} resolves to a non-public address {answer}", retryable=False)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise AlertDeliveryFailed(f"cannot resolve {host}: no addresses", retryable=True)
    return tuple(addresses)


@dataclass(frozen=True, slots=True)
class Destination:
    """Where one send goes: the URL's parts, and the addresses the send-time check approved.

    ``host`` is the name as the receiver knows it (ASCII, no trailing dot): it goes in the
    ``Host`` header and, for https, in SNI and the certificate check. ``addresses`` are the only
    places a connection may go (best first).
    """

    scheme: str  # http | https
    host: str
    port: int
    explicit_port: bool  # the URL spelled the port out: the Host header carries it
    target: str  # path and query, as sent in the request line
    addresses: tuple[IPAddress, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return f"{host}:{self.port}" if self.explicit_port and self.port != default else host

    def url_for(self, address: IPAddress) -> str:
        """The URL with ``address`` in place of the host: a client given it connects there and
        resolves nothing."""
        literal = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{literal}:{self.port}{self.target}"


def check_url_at_send(url: str, *, allow_insecure: bool = False, resolver: Resolver | None = None) -> Destination:
    """The send-time check shared by the HTTP channels: the URL's shape, then where its host
    resolves (``resolver``, default ``system_resolver``; an IP literal is not resolved).

    Returns the ``Destination``, whose addresses are the only ones to connect to. Raises
    ``AlertDeliveryFailed``: not retryable for a bad URL or a non-public address, retryable when
    the name does not resolve right now. ``allow_insecure`` (tests only) accepts http and
    loopback addresses, never other private ones.
    """
    reason = check_webhook_url(url, allowed_hosts=(), allow_insecure=allow_insecure)
    if reason is not None:
        raise AlertDeliveryFailed(f"{redact_url(url)} {reason}", retryable=False)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    name = parts.hostname or ""
    port = parts.port or (443 if scheme == "https" else 80)
    literal = _host_address(name)
    if literal is not None:
        host = str(literal)
        addresses: tuple[IPAddress, ...] = (literal,)  # already judged by check_webhook_url
    else:
        try:
            # the form a Host header and SNI carry (getaddrinfo encodes a name the same way)
            host = name.rstrip(".").encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise AlertDeliveryFailed(f"{redact_url(url)} host is not a valid name", retryable=False) from exc
        addresses = check_resolved(name, port, resolver=resolver, allow_loopback=allow_insecure)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(scheme, host, port, parts.port is not None, target, addresses)


def redact_url(url: str) -> str:
    """``scheme://host/…``: what may be logged of a webhook URL (a Slack webhook's path is its
    secret, and a query string can carry tokens)."""
    parts = _split(url) if isinstance(url, str) else None
    if parts is None or not parts.hostname:
        return "<invalid url>"
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme.lower()}://{host}{port}/…"
