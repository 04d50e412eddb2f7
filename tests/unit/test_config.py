"""Configuration: read from the environment when asked, and a production config that refuses to start."""

from __future__ import annotations

import pytest

from config import (
    Config,
    ConfigError,
    DevelopmentConfig,
    ProductionConfig,
    TestConfig,
    config_from_env,
    normalize_database_url,
)

pytestmark = pytest.mark.unit


def test_config_defaults_to_sqlite_under_instance() -> None:
    config = config_from_env({})
    assert isinstance(config, DevelopmentConfig)
    assert config.DATABASE_URL.startswith("sqlite:///") and config.DATABASE_URL.endswith("instance/healthscore.db")


def test_environment_overrides_and_prefix_wins() -> None:
    config = config_from_env(
        {"DATABASE_URL": "postgres://u@h/db", "HS_SECRET_KEY": "s3", "SECRET_KEY": "ignored", "HS_SMTP_PORT": "2525"}
    )
    assert config.DATABASE_URL == "postgresql+psycopg://u@h/db"
    assert config.SECRET_KEY == "s3"
    assert config.SMTP_PORT == 2525


def test_production_names_every_missing_variable() -> None:
    with pytest.raises(ConfigError) as excinfo:
        config_from_env({"HS_ENV": "production", "SECRET_KEY": "x"})
    message = str(excinfo.value)
    assert "production configuration refused" in message
    assert "DATABASE_URL is not set" in message and "PUBLIC_BASE_URL is not set" in message
    assert "SECRET_KEY" not in message


def test_production_starts_when_complete() -> None:
    env = {
        "HS_ENV": "production",
        "DATABASE_URL": "postgresql://h/db",
        "SECRET_KEY": "k",
        "PUBLIC_BASE_URL": "https://hs",
    }
    assert isinstance(config_from_env(env), ProductionConfig)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"HS_SMTP_PORT": "twenty"}, "HS_SMTP_PORT must be an integer"),
        ({"HS_DATABASE_ECHO": "maybe"}, "HS_DATABASE_ECHO must be a boolean"),
        ({"HS_ENV": "staging"}, "HS_ENV must be one of"),
        ({"SMTP_SECURITY": "tls13"}, "SMTP_SECURITY must be none, starttls or ssl"),
        ({"SLACK_WEBHOOK_URL": "http://hooks.slack.com/services/x"}, "SLACK_WEBHOOK_URL refused: must use https"),
        ({"SLACK_WEBHOOK_URL": "https://169.254.169.254/latest"}, "SLACK_WEBHOOK_URL refused"),
        ({"SLACK_WEBHOOK_URL": "https://attacker.example.com/x"}, "SLACK_WEBHOOK_URL refused"),
        ({"HS_ALERT_DISPATCH_SECONDS": "0"}, "ALERT_DISPATCH_SECONDS must be at least 1"),
        ({"HS_ALERT_LEASE_SECONDS": "5"}, "ALERT_LEASE_SECONDS must be at least 30"),
        (
            {
                "HS_ENV": "production",
                "DATABASE_URL": "sqlite://",
                "SECRET_KEY": "s",
                "PUBLIC_BASE_URL": "https://x",
                "HS_ALERT_ALLOW_INSECURE_WEBHOOKS": "1",
            },
            "ALERT_ALLOW_INSECURE_WEBHOOKS is for tests",
        ),
    ],
)
def test_malformed_values_are_refused(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        config_from_env(env)


def test_a_slack_webhook_on_the_allowlist_is_accepted() -> None:
    config = config_from_env({"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/abc"})
    assert config.SLACK_WEBHOOK_URL == "https://hooks.slack.com/services/T0/B0/abc"
    refused = {"SLACK_WEBHOOK_URL": "https://hooks.example.com/services/T0/B0/secret-path"}
    with pytest.raises(ConfigError) as raised:
        config_from_env(refused)
    assert "secret-path" not in str(raised.value)  # the URL's secret path is never echoed


def test_reading_happens_when_called_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HS_LOG_LEVEL", "DEBUG")
    assert Config.from_env().LOG_LEVEL == "DEBUG"
    monkeypatch.setenv("HS_LOG_LEVEL", "WARNING")
    assert Config.from_env().LOG_LEVEL == "WARNING"


def test_test_config_is_in_memory_by_default() -> None:
    assert TestConfig().DATABASE_URL == "sqlite://" and TestConfig().TESTING


def test_normalize_database_url_leaves_other_drivers_alone() -> None:
    assert normalize_database_url("postgresql+asyncpg://h/db") == "postgresql+asyncpg://h/db"
    assert normalize_database_url("sqlite:///x.db") == "sqlite:///x.db"
