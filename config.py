"""Configuration read from environment variables when the app is created, never at import."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import ClassVar

from apscheduler.triggers.cron import CronTrigger

from alerts.safety import check_webhook_url

HERE = Path(__file__).resolve().parent
DEFAULT_INSTANCE_DIR = HERE / "instance"


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

    SECRET_KEY: str = "dev-only-not-secret"
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
        if self.ALERT_ACK_LINK_DAYS < 1:
            problems.append("ALERT_ACK_LINK_DAYS must be at least 1")
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


@dataclass
class TestConfig(Config):
    __test__ = False  # not a pytest test class, despite the name
    ENV_NAME = "test"
    TESTING: bool = True
    DATABASE_URL: str = "sqlite://"


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
    return cls.from_env(env)
