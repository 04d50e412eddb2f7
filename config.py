"""Configuration read from environment variables when the app is created, never at import."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import ClassVar

from apscheduler.triggers.cron import CronTrigger

from alerts.safety import check_webhook_url

HERE = Path(__file__).resolve().parent
DEFAULT_INSTANCE_DIR = HERE / "instance"
#: The file in the instance folder holding a development install's generated SECRET_KEY.
SECRET_KEY_FILE = "secret_key"
#: The longest an acknowledge link may stay valid (ALERT_ACK_LINK_DAYS is capped to it): a link
#: is a credential sent by Slack and email, so it must not live for months.
MAX_ACK_LINK_DAYS = 30


class ConfigError(RuntimeError):
    """Raised when the configuration is incomplete or malformed; the message names every problem."""


def env_str(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env_str(env, name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env_str(env, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be a boolean (true/false), got {raw!r}")


def _is_time_of_day(value: str) -> bool:
    hour, _, minute = value.partition(":")
    return hour.isdigit() and minute.isdigit() and 0 <= int(hour) < 24 and 0 <= int(minute) < 60 and len(minute) == 2


def _is_crontab(value: str) -> bool:
    try:
        CronTrigger.from_crontab(value, timezone=dt.UTC)
    except ValueError:
        return False
    return True


def default_database_url(instance_dir: Path = DEFAULT_INSTANCE_DIR) -> str:
    return f"sqlite:///{instance_dir / 'healthscore.db'}"


def normalize_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs that do not name a driver (``postgres://`` included)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


@dataclass
class Config:
    """Safe defaults for a local run; ``from_env`` overlays the environment."""

    ENV_NAME = "default"

    # No default key: production must set one, development generates one into the instance folder
    # (``load_or_create_secret_key``), tests get a random one per app.
    SECRET_KEY: str = ""
    INSTANCE_PATH: str = str(DEFAULT_INSTANCE_DIR)
    DATABASE_URL: str = field(default_factory=default_database_url)
    DATABASE_ECHO: bool = False
    # Sources to pull (a TOML file; see app/sources/config.py)
    SOURCES_FILE: str | None = None
    # The demo's live feed: when set, the scheduler writes today's demo usage into this folder
    DEMO_FEED_INBOX: str | None = None
    DEMO_FEED_MINUTES: int = 1
    # Scheduler (`flask scheduler run`)
    SCORE_DAILY_AT: str = "02:00"  # UTC time of the daily scoring run
    SCORE_INTERVAL_SECONDS: int = 0  # > 0: score every N seconds instead (demos, tests)
    SCHEDULER_LEASE_SECONDS: int = 30  # a standby takes over this long after the leader dies
    SCHEDULER_HEARTBEAT_SECONDS: int = 10  # how often the leader renews (and a standby tries)
    # Learning from outcomes (docs/learning.md): when the churn model is retrained, and on what
    CHURN_MODEL_RETRAIN_CRON: str = "0 3 1 * *"  # crontab, UTC: 03:00 on the 1st of each month
    CHURN_MODEL_HORIZON_DAYS: int = 90  # the model foresees a churn within this many days
    CHURN_MODEL_PERIODIC_MONTHS: int = 12  # monthly observations added to the outcomes (0: outcomes only)
    LEARNING_CACHE_DIR: str | None = None  # the day's learning observations (default: <instance>/cache/learning)
    # Alerts
    PUBLIC_BASE_URL: str = "http://127.0.0.1:5000"
    SLACK_WEBHOOK_URL: str | None = None
    SMTP_HOST: str | None = None
    SMTP_PORT: int = 587
    SMTP_USERNAME: str | None = None
    SMTP_PASSWORD: str | None = None
    SMTP_SECURITY: str = "starttls"
    ALERT_EMAIL_FROM: str | None = None
    SMTP_CA_FILE: str | None = None  # a CA bundle to verify the SMTP server with (a private CA)
    ALERT_DISPATCH_SECONDS: int = 2  # how often each scheduler process sends due alerts
    ALERT_DIGEST_CHECK_MINUTES: int = 5  # how often the digests due (routing's local time) are queued
    ALERT_LEASE_SECONDS: int = 60  # a claimed alert returns to the queue this long after a dispatcher died
    ALERT_BATCH_SIZE: int = 100  # alerts claimed per round trip
    ALERT_ACK_LINK_DAYS: int = 7  # how long an acknowledge link in a message stays valid
    ALERT_WEBHOOK_HOSTS: str = "hooks.slack.com"  # comma-separated allowlist (*.example.com wildcards)
    ALERT_ALLOW_INSECURE_WEBHOOKS: bool = False  # http and loopback webhooks: tests only
    # API
    INGEST_MAX_BATCH: int = 5_000  # records per POST /api/v1/ingest/<kind>; more gets 413
    MAX_CONTENT_LENGTH: int = 32 * 1024 * 1024  # bytes per request body; more gets 413
    TOKEN_CACHE_SECONDS: int = 5  # a worker trusts a checked token this long (revocation delay); 0: off
    WATCHLIST_CACHE_ENTRIES: int = 256  # watchlist pages a worker keeps (PostgreSQL; docs/watchlist.md); 0: off
    ACCOUNT_PAGE_CACHE_ENTRIES: int = 256  # account pages a worker keeps (PostgreSQL; docs/web.md); 0: off
    # Guards (app/limits.py, app/headers.py; docs/operations.md)
    RATE_LIMIT_ENABLED: bool = True
    RATE_LIMIT_STORAGE_URI: str = "memory://"  # one process; redis://host:6379 for several
    RATE_LIMIT_AUTH_FAILURES: str = "20 per minute"  # failed token checks per client address
    RATE_LIMIT_EXPENSIVE: str = "10 per minute"  # previews, activations, suggestions, trainings per user
    FORCE_HTTPS: bool = False  # redirect http to https (when no proxy in front does it)
    # Operations (app/ops.py): /readyz and /metrics
    METRICS_TOKEN: str = ""  # a bearer token for /metrics besides admin API tokens (for Prometheus)
    READY_OUTBOX_MAX_DUE_SECONDS: int = 900  # /readyz fails when an alert has been due longer than this
    READY_REQUIRE_SCHEDULER: bool = True  # /readyz fails without a fresh scheduler lease
    # Pages (app/web, docs/web.md): the session cookie is Secure unless turned off for plain-http
    # development; it expires WEB_SESSION_MINUTES after sign-in; invite and reset links live
    # WEB_LINK_HOURS; sign-in attempts are limited per account and per address (Flask-Limiter).
    SESSION_COOKIE_SECURE: bool = True
    WEB_SESSION_MINUTES: int = 720
    WEB_LINK_HOURS: int = 72
    SIGN_IN_LIMIT_ACCOUNT: str = "5 per minute;20 per hour"
    SIGN_IN_LIMIT_ADDRESS: str = "20 per minute"
    # Single sign-on through OpenID Connect (app/web/sso.py): on when an issuer is given. People
    # sign in as the user whose email the provider vouches for (email_verified).
    OIDC_ISSUER: str = ""  # e.g. https://login.example.com/realms/cs (its /.well-known/openid-configuration)
    OIDC_CLIENT_ID: str = ""
    OIDC_CLIENT_SECRET: str = ""
    WATCHLIST_FALLING_7D_POINTS: int = 2  # an average account falling this many points in 7 days is listed
    LOG_LEVEL: str = "INFO"
    TESTING: bool = False

    #: variables a production deployment must set explicitly
    REQUIRED: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Build a config from ``env`` (default ``os.environ``); read when called, never at import."""
        env = os.environ if env is None else env
        base = cls()
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f.name
            current = getattr(base, name)
            key = f"HS_{name}"
            # The common deployment names work without the HS_ prefix too.
            raw_name = key if key in env else name if name in _UNPREFIXED else key
            if isinstance(current, bool):
                values[name] = env_bool(env, raw_name, current)
            elif isinstance(current, int):
                values[name] = env_int(env, raw_name, current)
            else:
                values[name] = env_str(env, raw_name, current)
        config = cls(**values)  # type: ignore[arg-type]
        config.DATABASE_URL = normalize_database_url(config.DATABASE_URL)
        config.validate(env)
        return config

    def missing(self, env: Mapping[str, str]) -> list[str]:
        missing = []
        for name in self.REQUIRED:
            if env_str(env, name) is None and env_str(env, f"HS_{name}") is None:
                missing.append(name)
        return missing

    def validate(self, env: Mapping[str, str]) -> None:
        problems = [f"{name} is not set" for name in self.missing(env)]
        if not _is_time_of_day(self.SCORE_DAILY_AT):
            problems.append(f"SCORE_DAILY_AT must be a time HH:MM, got {self.SCORE_DAILY_AT!r}")
        if self.INGEST_MAX_BATCH < 1:
            problems.append("INGEST_MAX_BATCH must be at least 1")
        if self.WATCHLIST_CACHE_ENTRIES < 0:
            problems.append("WATCHLIST_CACHE_ENTRIES must not be negative")
        if self.ACCOUNT_PAGE_CACHE_ENTRIES < 0:
            problems.append("ACCOUNT_PAGE_CACHE_ENTRIES must not be negative")
        if not 1 <= self.WATCHLIST_FALLING_7D_POINTS <= 100:
            problems.append("WATCHLIST_FALLING_7D_POINTS must be between 1 and 100")
        if self.TOKEN_CACHE_SECONDS < 0:
            problems.append("TOKEN_CACHE_SECONDS must not be negative")
        if self.SCORE_INTERVAL_SECONDS < 0:
            problems.append("SCORE_INTERVAL_SECONDS must not be negative")
        if not 0 < self.SCHEDULER_HEARTBEAT_SECONDS < self.SCHEDULER_LEASE_SECONDS:
            problems.append("SCHEDULER_HEARTBEAT_SECONDS must be positive and shorter than SCHEDULER_LEASE_SECONDS")
        if not _is_crontab(self.CHURN_MODEL_RETRAIN_CRON):
            problems.append(
                f"CHURN_MODEL_RETRAIN_CRON must be a crontab line (minute hour day month weekday), "
                f"got {self.CHURN_MODEL_RETRAIN_CRON!r}"
            )
        if not 7 <= self.CHURN_MODEL_HORIZON_DAYS <= 730:
            problems.append("CHURN_MODEL_HORIZON_DAYS must be between 7 and 730")
        if not 0 <= self.CHURN_MODEL_PERIODIC_MONTHS <= 60:
            problems.append("CHURN_MODEL_PERIODIC_MONTHS must be between 0 and 60")
        if self.ALERT_DISPATCH_SECONDS < 1:
            problems.append("ALERT_DISPATCH_SECONDS must be at least 1")
        if self.ALERT_DIGEST_CHECK_MINUTES < 1:
            problems.append("ALERT_DIGEST_CHECK_MINUTES must be at least 1")
        if self.ALERT_BATCH_SIZE < 1:
            problems.append("ALERT_BATCH_SIZE must be at least 1")
        if self.ALERT_LEASE_SECONDS < 30:
            problems.append("ALERT_LEASE_SECONDS must be at least 30 (a send can take a timeout or two)")
        if not 1 <= self.ALERT_ACK_LINK_DAYS <= MAX_ACK_LINK_DAYS:
            problems.append(f"ALERT_ACK_LINK_DAYS must be between 1 and {MAX_ACK_LINK_DAYS}")
        if not self.SECRET_KEY and self.ENV_NAME not in {"development", "test"} and "SECRET_KEY" not in self.REQUIRED:
            problems.append("SECRET_KEY is not set")
        elif self.SECRET_KEY and len(self.SECRET_KEY) < 16 and self.ENV_NAME == "production":
            problems.append("SECRET_KEY is too short (use at least 16 random characters)")
        if self.SLACK_WEBHOOK_URL:
            problem = check_webhook_url(
                self.SLACK_WEBHOOK_URL,
                allowed_hosts=[h.strip() for h in self.ALERT_WEBHOOK_HOSTS.split(",") if h.strip()],
                allow_insecure=self.ALERT_ALLOW_INSECURE_WEBHOOKS,
            )
            if problem:
                problems.append(f"SLACK_WEBHOOK_URL refused: {problem}")
        if self.ALERT_ALLOW_INSECURE_WEBHOOKS and self.ENV_NAME == "production":
            problems.append("ALERT_ALLOW_INSECURE_WEBHOOKS is for tests; production webhooks must be https")
        if self.READY_OUTBOX_MAX_DUE_SECONDS < 60:
            problems.append("READY_OUTBOX_MAX_DUE_SECONDS must be at least 60")
        if self.METRICS_TOKEN and len(self.METRICS_TOKEN) < 16:
            problems.append("METRICS_TOKEN is too short (use at least 16 random characters)")
        if self.WEB_SESSION_MINUTES < 1 or self.WEB_LINK_HOURS < 1:
            problems.append("WEB_SESSION_MINUTES and WEB_LINK_HOURS must be at least 1")
        if self.OIDC_ISSUER and not (self.OIDC_CLIENT_ID and self.OIDC_CLIENT_SECRET):
            problems.append("OIDC_ISSUER needs OIDC_CLIENT_ID and OIDC_CLIENT_SECRET")
        if self.SMTP_SECURITY not in {"none", "starttls", "ssl"}:
            problems.append(f"SMTP_SECURITY must be none, starttls or ssl, got {self.SMTP_SECURITY!r}")
        if problems:
            raise ConfigError(f"{self.ENV_NAME} configuration refused: " + "; ".join(problems))

    def as_flask_mapping(self) -> dict[str, object]:
        mapping = {f.name: getattr(self, f.name) for f in fields(self)}
        mapping["ENV_NAME"] = self.ENV_NAME
        return mapping


# Variables that deployments conventionally set without a prefix (12-factor style).
_UNPREFIXED = frozenset(
    {
        "DATABASE_URL",
        "SECRET_KEY",
        "SLACK_WEBHOOK_URL",
        "SMTP_HOST",
        "SMTP_PORT",
        "SMTP_USERNAME",
        "SMTP_PASSWORD",
        "SMTP_SECURITY",
        "SMTP_CA_FILE",
        "ALERT_EMAIL_FROM",
        "PUBLIC_BASE_URL",
        "LOG_LEVEL",
    }
)


@dataclass
class DevelopmentConfig(Config):
    ENV_NAME = "development"
    SESSION_COOKIE_SECURE: bool = False  # the demo serves plain http on 127.0.0.1


@dataclass
class TestConfig(Config):
    __test__ = False  # not a pytest test class, despite the name
    ENV_NAME = "test"
    TESTING: bool = True
    DATABASE_URL: str = "sqlite://"
    SECRET_KEY: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # Tests make many calls a minute with one token; the guard tests set their own limits.
    RATE_LIMIT_EXPENSIVE: str = "600 per minute"
    SESSION_COOKIE_SECURE: bool = False


@dataclass
class ProductionConfig(Config):
    ENV_NAME = "production"
    REQUIRED: ClassVar[tuple[str, ...]] = ("DATABASE_URL", "SECRET_KEY", "PUBLIC_BASE_URL")


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "production": ProductionConfig,
    "test": TestConfig,
}


def config_from_env(env: Mapping[str, str] | None = None) -> Config:
    """Pick the config class from ``HS_ENV`` (development by default) and read the environment."""
    env = os.environ if env is None else env
    name = (env_str(env, "HS_ENV") or "development").lower()
    try:
        cls = CONFIGS[name]
    except KeyError:
        raise ConfigError(f"HS_ENV must be one of {', '.join(sorted(CONFIGS))}, got {name!r}") from None
    config = cls.from_env(env)
    if not config.SECRET_KEY and config.ENV_NAME == "development":
        config.SECRET_KEY = load_or_create_secret_key(Path(config.INSTANCE_PATH))
    return config


def load_or_create_secret_key(instance_dir: Path) -> str:
    """The development install's own secret key: generated at random the first time, into
    ``instance_dir/secret_key`` (mode 0600), and read back ever after, so the web server and the
    scheduler of one install sign and check links with the same key.

    Two processes starting at once agree: the key is written to a temporary file and linked into
    place, which fails for the second one, who reads the first one's key.
    """
    path = instance_dir / SECRET_KEY_FILE
    try:
        if not path.exists():
            _write_new_key(instance_dir, path)
        key = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(
            f"No SECRET_KEY is set and none could be kept in {path} ({exc.strerror or exc}): "
            "set SECRET_KEY, or HS_INSTANCE_PATH to a writable folder"
        ) from None
    if len(key) < 16:
        raise ConfigError(f"{path} holds no usable secret key: delete it to generate a new one, or set SECRET_KEY")
    return key


def _write_new_key(instance_dir: Path, path: Path) -> None:
    instance_dir.mkdir(parents=True, exist_ok=True)
    temporary = instance_dir / f".{SECRET_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")
    try:
        os.link(temporary, path)  # fails when another process linked its key first: theirs wins
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
