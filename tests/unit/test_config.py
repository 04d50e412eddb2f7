"""Configuration: read from the environment when asked, and a production config that refuses to start."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from alerts.signing import InvalidAckToken, sign_ack, verify_ack
from app import create_app
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


def test_config_defaults_to_sqlite_under_instance(tmp_path: Path) -> None:
    config = config_from_env({"HS_INSTANCE_PATH": str(tmp_path)})
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
        config_from_env({"HS_ENV": "production", "SECRET_KEY": "x" * 32})
    message = str(excinfo.value)
    assert "production configuration refused" in message
    assert "DATABASE_URL is not set" in message and "PUBLIC_BASE_URL is not set" in message
    assert "SECRET_KEY" not in message


def test_production_starts_when_complete() -> None:
    env = {
        "HS_ENV": "production",
        "DATABASE_URL": "postgresql://h/db",
        "SECRET_KEY": "k" * 32,
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
                "SECRET_KEY": "s" * 32,
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
    monkeypatch.setenv("HS_SECRET_KEY", "s" * 32)
    monkeypatch.setenv("HS_LOG_LEVEL", "DEBUG")
    assert Config.from_env().LOG_LEVEL == "DEBUG"
    monkeypatch.setenv("HS_LOG_LEVEL", "WARNING")
    assert Config.from_env().LOG_LEVEL == "WARNING"


def test_test_config_is_in_memory_by_default() -> None:
    assert TestConfig().DATABASE_URL == "sqlite://" and TestConfig().TESTING


def test_normalize_database_url_leaves_other_drivers_alone() -> None:
    assert normalize_database_url("postgresql+asyncpg://h/db") == "postgresql+asyncpg://h/db"
    assert normalize_database_url("sqlite:///x.db") == "sqlite:///x.db"


# --- secrets (issue 17): no constant key anywhere ----------------------------------------------------

#: The key every install used to share when SECRET_KEY was unset.
PUBLISHED_DEV_KEY = "dev-only-not-secret"


def test_no_environment_means_no_published_key_but_one_generated_into_the_instance_folder(tmp_path: Path) -> None:
    # Started as the README's PostgreSQL recipe did (no HS_ENV, no SECRET_KEY): the key used to be
    # the published development value, so anyone could forge acknowledge links.
    config = config_from_env({"DATABASE_URL": "postgresql://h/db", "HS_INSTANCE_PATH": str(tmp_path)})
    assert config.SECRET_KEY != PUBLISHED_DEV_KEY and len(config.SECRET_KEY) >= 32
    key_file = tmp_path / "secret_key"
    assert key_file.read_text().strip() == config.SECRET_KEY
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    # Generated once: the scheduler and the web server of one install read the same key.
    assert config_from_env({"HS_INSTANCE_PATH": str(tmp_path)}).SECRET_KEY == config.SECRET_KEY
    # And another install gets another key.
    assert config_from_env({"HS_INSTANCE_PATH": str(tmp_path / "other")}).SECRET_KEY != config.SECRET_KEY


def test_two_processes_generating_the_key_at_once_agree(tmp_path: Path) -> None:
    keys: list[str] = []
    threads = [
        threading.Thread(target=lambda: keys.append(config_from_env({"HS_INSTANCE_PATH": str(tmp_path)}).SECRET_KEY))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1 and len(keys) == 8
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]


def test_a_forged_link_signed_with_the_published_key_is_refused(tmp_path: Path) -> None:
    app = create_app(config_from_env({"HS_INSTANCE_PATH": str(tmp_path)}))
    forged = sign_ack(PUBLISHED_DEV_KEY, 1, 2_000_000_000)
    response = app.test_client().get("/alerts/ack", query_string={"token": forged})
    assert response.status_code == 400
    assert "bad signature" in response.get_data(as_text=True)


def test_test_configs_get_a_random_key_each() -> None:
    assert TestConfig().SECRET_KEY != TestConfig().SECRET_KEY
    assert PUBLISHED_DEV_KEY not in {TestConfig().SECRET_KEY, Config().SECRET_KEY}


def test_an_app_refuses_to_start_without_a_key() -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY is empty"):
        create_app(Config(DATABASE_URL="sqlite://"))


@pytest.mark.parametrize("env_name", ["production"])
def test_outside_development_and_test_a_key_is_required(env_name: str) -> None:
    env = {"HS_ENV": env_name, "DATABASE_URL": "postgresql://h/db", "PUBLIC_BASE_URL": "https://hs"}
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        config_from_env(env)
    with pytest.raises(ConfigError, match="SECRET_KEY is too short"):
        config_from_env({**env, "SECRET_KEY": "short"})


def test_acknowledge_links_have_a_capped_life() -> None:
    with pytest.raises(ConfigError, match="ALERT_ACK_LINK_DAYS must be between 1 and 30"):
        config_from_env({"HS_ENV": "test", "HS_ALERT_ACK_LINK_DAYS": "3650"})
    now = 1_800_000_000
    ten_years = sign_ack("k" * 32, 7, now + 3650 * 86_400)
    assert verify_ack("k" * 32, ten_years, now=now) == 7  # the signature alone says nothing of the life
    with pytest.raises(InvalidAckToken, match="further away"):
        verify_ack("k" * 32, ten_years, now=now, max_age=7 * 86_400)
    assert verify_ack("k" * 32, sign_ack("k" * 32, 7, now + 7 * 86_400), now=now, max_age=7 * 86_400) == 7


def test_a_development_key_that_cannot_be_kept_is_a_readable_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="set SECRET_KEY, or HS_INSTANCE_PATH to a writable folder"):
        config_from_env({"HS_INSTANCE_PATH": str(blocker / "instance")})
    (tmp_path / "short").mkdir()
    (tmp_path / "short" / "secret_key").write_text("abc\n")
    with pytest.raises(ConfigError, match="holds no usable secret key"):
        config_from_env({"HS_INSTANCE_PATH": str(tmp_path / "short")})
