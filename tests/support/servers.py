"""Real servers on 127.0.0.1 for channel tests: a scripted HTTP(S) server (standing in for Slack or a
webhook receiver) and an SMTP server (aiosmtpd), each started and stopped by the test.

Use them as context managers or through the fixtures at the bottom (import them into a test
module: ``from tests.support.servers import http_server, smtp_server  # noqa: F401``).
Everything they open is closed on ``stop()``: pytest runs with ``filterwarnings = error``, so a
leaked socket or thread would fail a later test.
"""

from __future__ import annotations

import contextlib
import email
import email.message
import email.policy
import json
import logging
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"

# --- HTTP -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One scripted answer: ``status``, ``headers``, ``body``, after ``delay`` seconds."""

    status: int = 200
    body: bytes = b"ok"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0


def ok(body: bytes = b"ok") -> Reply:
    return Reply(200, body)


def status(code: int, body: bytes = b"error") -> Reply:
    return Reply(code, body)


def rate_limited(retry_after: float | str = 2) -> Reply:
    value = str(int(retry_after)) if isinstance(retry_after, int | float) else retry_after
    return Reply(429, b"rate_limited", (("Retry-After", value),))


def hang(seconds: float) -> Reply:
    """Answer 200, but only after ``seconds`` (a client with a shorter timeout gives up)."""
    return Reply(200, b"ok", delay=seconds)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when it arrived

    def header(self, name: str) -> str | None:
        """A header by case-insensitive name."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def json(self) -> Any:
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver does
    # headers and body go out in two writes; with Nagle on, the second waits for the client's
    # delayed ACK (40 ms) and caps a keep-alive client at 25 requests a second
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            # the handshake runs here, in the connection's thread, not in the accepting one
            self.request.settimeout(5)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()

    def _handle(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = owner._record_and_next(
            RecordedRequest(self.command, self.path, dict(self.headers.items()), body, time.time())
        )
        if reply.delay and owner._stopping.wait(reply.delay):
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:  # the client gave up waiting (a hang longer than its timeout)
            self.close_connection = True

    do_POST = do_GET = do_PUT = _handle

    def log_message(self, format: str, *args: Any) -> None:  # quiet: no stderr per request
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: ScriptedHTTPServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        context = self.owner._tls_context
        if context is not None:
            sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def process_request(self, request: Any, client_address: Any) -> None:
        # own the connection threads and sockets, so stop() can end keep-alive connections and
        # join every thread (ThreadingMixIn does not join daemon threads)
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address), daemon=True)
        self.owner._track(thread, request)
        thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self.owner._stopping.is_set():
            return
        if isinstance(sys.exc_info()[1], ssl.SSLError | ConnectionError):
            # a client refused our certificate (what TLS tests check), or hung up mid-handshake
            self.owner._note_tls_failure()
            return
        super().handle_error(request, client_address)


class ScriptedHTTPServer:
    """A threaded HTTP server on 127.0.0.1 that records requests and answers from a script.

    ``script(*replies)`` queues answers, consumed one per request in order; after them every
    request gets ``default``. ``stop()`` then ``start()`` brings it back on the same port (the
    receiver was down); ``drop_connections()`` closes the kept-alive connections and keeps serving
    (an idle timeout). ``connections`` counts accepted connections. ``host`` is the address to
    listen on (any 127.x works on Linux). With a ``certificate`` it speaks https and records the
    SNI names clients send (``server_names``). Thread-safe.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        default: Reply | None = None,
        host: str = HOST,
        certificate: Certificate | None = None,
    ) -> None:
        self.port = port
        self.host = host
        self.default = default or ok()
        self.certificate = certificate
        self._tls_context: ssl.SSLContext | None = None
        self._accepted = 0
        self._tls_failures = 0
        self._server_names: list[str | None] = []
        self._script: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: list[tuple[threading.Thread, socket.socket]] = []

    # -- script and record --
    def script(self, *replies: Reply) -> ScriptedHTTPServer:
        with self._lock:
            self._script.extend(replies)
        return self

    def _record_and_next(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            return self._script.popleft() if self._script else self.default

    def _track(self, thread: threading.Thread, sock: socket.socket) -> None:
        with self._lock:
            self._accepted += 1
            self._connections = [(t, s) for t, s in self._connections if t.is_alive()]
            self._connections.append((thread, sock))

    def _note_tls_failure(self) -> None:
        with self._lock:
            self._tls_failures += 1

    def _note_server_name(self, sock: Any, name: str | None, context: Any) -> None:
        with self._lock:
            self._server_names.append(name)

    @property
    def connections(self) -> int:
        """How many connections were accepted since the server was made."""
        with self._lock:
            return self._accepted

    @property
    def tls_failures(self) -> int:
        """Connections whose TLS handshake failed (e.g. the client refused the certificate)."""
        with self._lock:
            return self._tls_failures

    @property
    def server_names(self) -> list[str | None]:
        """The SNI name of each TLS handshake, in order (None: the client sent none)."""
        with self._lock:
            return list(self._server_names)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._script.clear()

    @property
    def scheme(self) -> str:
        return "https" if self.certificate is not None else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/"

    def url_for(self, path: str, *, host: str | None = None) -> str:
        """The URL of ``path``; ``host`` puts a name in place of the address (a test resolver maps
        it back)."""
        return f"{self.scheme}://{host or self.host}:{self.port}/{path.lstrip('/')}"

    # -- lifecycle --
    def start(self) -> ScriptedHTTPServer:
        if self._server is not None:
            return self
        self._stopping.clear()
        if self.certificate is not None and self._tls_context is None:
            self._tls_context = self.certificate.server_context()
            self._tls_context.sni_callback = self._note_server_name
        self._server = _HTTPServer((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def drop_connections(self) -> None:
        """Close every open connection from the server side and keep serving, as a receiver's
        idle timeout does between two sends. Returns once the connections are closed."""
        with self._lock:
            connections, self._connections = self._connections, []
        for _, sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread, _ in connections:
            thread.join(5)
        time.sleep(0.05)  # let the closes reach the client's socket

    def stop(self) -> None:
        """Stop serving and close every connection; requests and script are kept."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        with self._lock:
            connections, self._connections = self._connections, []
        for _, sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread, _ in connections:
            thread.join(5)
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None
        self._thread = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> ScriptedHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- TLS certificate ------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate (by default for 127.0.0.1 and localhost); ``ca_file`` is the
    certificate itself, which a client trusts to verify the server."""

    cert_file: str
    key_file: str

    @property
    def ca_file(self) -> str:
        return self.cert_file

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_certificate(
    directory: str | Path, *, names: Sequence[str] = ("localhost",), addresses: Sequence[str] = (HOST,)
) -> Certificate:
    """Generate a self-signed certificate into ``directory`` for the host ``names`` and IP
    ``addresses`` (its subject alternative names; the common name is the first of them, which
    clients ignore). Uses the ``openssl`` command line: the ``cryptography`` package is not a
    dependency of this project."""
    if shutil.which("openssl") is None:  # pragma: no cover - depends on the machine
        pytest.skip("openssl is not installed")
    directory = Path(directory)
    cert, key = directory / "cert.pem", directory / "key.pem"
    alt_names = ",".join([*(f"IP:{a}" for a in addresses), *(f"DNS:{n}" for n in names)])
    common_name = (*addresses, *names)[0]
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={common_name}",
            "-addext", f"subjectAltName={alt_names}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return Certificate(str(cert), str(key))


# --- SMTP -----------------------------------------------------------------------------------


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage
    raw: bytes


@dataclass
class _SmtpState:
    received: list[ReceivedMail] = field(default_factory=list)
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)
    fail_next: deque[tuple[int, str]] = field(default_factory=deque)
    logins: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler_SMTP:
    """aiosmtpd handler: scripted refusals at RCPT, records messages at DATA."""

    def __init__(self, state: _SmtpState) -> None:
        self.state = state

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        with self.state.lock:
            if self.state.fail_next:
                code, text = self.state.fail_next.popleft()
                return f"{code} {text}"
            if address.lower() in self.state.refused:
                code, text = self.state.refused[address.lower()]
                return f"{code} {text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        with self.state.lock:
            self.state.received.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message, raw))
        return "250 Message accepted for delivery"


SmtpSecurity = Literal["none", "starttls", "ssl"]


class SmtpTestServer:
    """aiosmtpd on 127.0.0.1 (a free port), recording what it receives.

    ``security``: ``none``, ``starttls`` (offers STARTTLS) or ``ssl`` (TLS from the first byte),
    with a self-signed certificate (``ca_file`` for the client). ``username``/``password``:
    require AUTH LOGIN with these (PLAIN is not offered, so the client must use LOGIN).
    ``refuse(address, 550)`` refuses a recipient; ``fail_next(451)`` answers the next RCPT with
    a temporary error; ``drop_connections()`` closes every client connection server-side.
    """

    def __init__(
        self,
        *,
        security: SmtpSecurity = "none",
        username: str | None = None,
        password: str | None = None,
        certificate: Certificate | None = None,
    ) -> None:
        self.security = security
        self.username = username
        self.password = password
        self.state = _SmtpState()
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if security != "none" and certificate is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="smtp-cert-")
            certificate = make_certificate(self._tempdir.name)
        self.certificate = certificate
        self.port = _free_port()
        self._controller: Any = None
        self._sessions: list[Any] = []

    @property
    def host(self) -> str:
        return HOST

    @property
    def ca_file(self) -> str | None:
        return self.certificate.ca_file if self.certificate else None

    @property
    def received(self) -> list[ReceivedMail]:
        with self.state.lock:
            return list(self.state.received)

    @property
    def logins(self) -> list[str]:
        with self.state.lock:
            return list(self.state.logins)

    def refuse(self, address: str, code: int = 550, text: str = "5.1.1 No such user") -> None:
        with self.state.lock:
            self.state.refused[address.lower()] = (code, text)

    def fail_next(self, code: int = 451, text: str = "4.3.0 Try again later", n: int = 1) -> None:
        with self.state.lock:
            self.state.fail_next.extend([(code, text)] * n)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode()
        good = login == self.username and auth_data.password.decode() == self.password
        if good:
            with self.state.lock:
                self.state.logins.append(f"{mechanism}:{login}")
        return AuthResult(success=good, handled=False)

    def start(self) -> SmtpTestServer:
        _quiet_aiosmtpd_log()

        sessions = self._sessions

        class _Tracking(Controller):  # type: ignore[misc]
            def factory(self) -> Any:
                smtp = super().factory()
                sessions.append(smtp)
                return smtp

        kwargs: dict[str, Any] = {"hostname": HOST, "port": self.port, "server_hostname": "healthscore-test"}
        if self.username is not None:
            kwargs.update(
                authenticator=self._authenticate,
                auth_exclude_mechanism=["PLAIN"],
                # implicit TLS is invisible to aiosmtpd's STARTTLS check; "none" is plain on purpose
                auth_require_tls=self.security == "starttls",
            )
        if self.security == "starttls":
            assert self.certificate is not None
            kwargs.update(tls_context=self.certificate.server_context(), require_starttls=True)
        elif self.security == "ssl":
            assert self.certificate is not None
            kwargs["ssl_context"] = self.certificate.server_context()
        self._controller = _Tracking(_Handler_SMTP(self.state), **kwargs)
        self._controller.start()
        return self

    def drop_connections(self) -> None:
        """Close every client connection from the server side (as an idle timeout would)."""
        controller = self._controller
        if controller is None:
            return
        done = threading.Event()

        def close_all() -> None:
            for smtp in self._sessions:
                transport = getattr(smtp, "transport", None)
                if transport is not None:
                    transport.close()
            done.set()

        controller.loop.call_soon_threadsafe(close_all)
        done.wait(5)
        time.sleep(0.05)  # let the closes reach the client's socket

    def stop(self) -> None:
        if self._controller is not None:
            self.drop_connections()
            self._controller.stop()
            self._controller = None
        self._sessions.clear()

    def close(self) -> None:
        self.stop()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> SmtpTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class _DropDeprecationNotice(logging.Filter):
    """aiosmtpd logs a warning of its own deprecated ``Session.login_data`` on every AUTH."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


_AIOSMTPD_FILTER = _DropDeprecationNotice()


def _quiet_aiosmtpd_log() -> None:
    logger = logging.getLogger("mail.log")
    if _AIOSMTPD_FILTER not in logger.filters:
        logger.addFilter(_AIOSMTPD_FILTER)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def http_server() -> Iterator[ScriptedHTTPServer]:
    """A running ``ScriptedHTTPServer`` (default answer 200), stopped after the test."""
    with ScriptedHTTPServer() as server:
        yield server


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """One self-signed certificate for 127.0.0.1 per test session."""
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp_server() -> Iterator[SmtpTestServer]:
    """A running plain ``SmtpTestServer`` without AUTH."""
    with SmtpTestServer() as server:
        yield server


SMTP_USER = "alerts@example.com"
SMTP_PASSWORD = "s3cret-Passw0rd!"


@pytest.fixture(params=["none", "starttls", "ssl"])
def smtp_login_server(request: pytest.FixtureRequest, tls_certificate: Certificate) -> Iterator[SmtpTestServer]:
    """An ``SmtpTestServer`` requiring AUTH LOGIN (``SMTP_USER``/``SMTP_PASSWORD``), once per
    security mode (``server.security``)."""
    with SmtpTestServer(
        security=request.param, username=SMTP_USER, password=SMTP_PASSWORD, certificate=tls_certificate
    ) as server:
        yield server
