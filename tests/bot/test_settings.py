"""Settings from the environment: defaults, off channels, and half-configured ones that stop start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import (
    MP_DEFAULT_API_BASE,
    WECOM_DEFAULT_API_BASE,
    Settings,
    SettingsError,
)

ROOT = Path(__file__).resolve().parents[2]
AES = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
WECOM_ENV = {"WECOM_CORP_ID": "wx49f0ab532d5d035a", "WECOM_AGENT_ID": "1000002", "WECOM_SECRET": "s",
             "WECOM_TOKEN": "t", "WECOM_AES_KEY": AES}
MP_ENV = {"MP_APP_ID": "wx2c2769f8efd9abc2", "MP_SECRET": "s", "MP_TOKEN": "t"}


@pytest.fixture
def base(tmp_path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{tmp_path / 'z.sqlite3'}", "SECRET_KEY": "k",
            "BOT_INSTANCE_DIR": str(tmp_path / "instance")}


def from_env(env: dict[str, str]) -> Settings:
    return Settings.from_env(env, read_dotenv=False)


def test_defaults(base):
    settings = from_env({**base, **WECOM_ENV, **MP_ENV})
    assert settings.wecom.api_base == WECOM_DEFAULT_API_BASE == "https://qyapi.weixin.qq.com/cgi-bin/"
    assert settings.mp.api_base == MP_DEFAULT_API_BASE == "https://api.weixin.qq.com/cgi-bin/"
    assert settings.scheduler_tick_seconds == 15
    assert settings.timezone == "Asia/Shanghai"
    assert settings.redis_url is None
    assert settings.max_body_bytes == 64 * 1024
    assert settings.max_clock_skew_seconds == 300
    assert settings.wecom.agent_id == 1000002
    assert settings.mp.aes_key is None  # plain mode only


def test_database_defaults_to_sqlite_under_the_instance_dir(tmp_path):
    settings = from_env({"SECRET_KEY": "k", "BOT_INSTANCE_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'zhitong.sqlite3'}"


def test_secret_key_is_generated_once_per_instance_dir(tmp_path):
    first = from_env({"BOT_INSTANCE_DIR": str(tmp_path)}).secret_key
    assert len(first) >= 32
    assert from_env({"BOT_INSTANCE_DIR": str(tmp_path)}).secret_key == first


def test_channels_absent_are_off(base):
    settings = from_env(base)
    assert settings.wecom is None and settings.mp is None


def test_overrides_and_postgres_url_normalised(base):
    settings = from_env({**base, **WECOM_ENV, "WECOM_API_BASE": "http://127.0.0.1:9000/cgi-bin",
                         "SCHEDULER_TICK_SECONDS": "2.5", "DATABASE_URL": "postgres://u@h/db",
                         "REDIS_URL": "redis://r:6379/0", "BOT_TIMEZONE": "Asia/Urumqi"})
    assert settings.wecom.api_base == "http://127.0.0.1:9000/cgi-bin/"
    assert settings.scheduler_tick_seconds == 2.5
    assert settings.database_url == "postgresql+psycopg://u@h/db"
    assert settings.redis_url == "redis://r:6379/0"
    assert settings.timezone == "Asia/Urumqi"


def test_blank_values_count_as_unset(base):
    settings = from_env({**base, "WECOM_CORP_ID": "  ", "MP_APP_ID": "", "REDIS_URL": " "})
    assert settings.wecom is None and settings.mp is None and settings.redis_url is None


@pytest.mark.parametrize("missing", sorted(WECOM_ENV))
def test_half_configured_wecom_names_the_missing_variable(base, missing):
    env = {**base, **WECOM_ENV}
    del env[missing]
    with pytest.raises(SettingsError, match=missing):
        from_env(env)


@pytest.mark.parametrize("missing", sorted(MP_ENV))
def test_half_configured_mp_names_the_missing_variable(base, missing):
    env = {**base, **MP_ENV}
    del env[missing]
    with pytest.raises(SettingsError, match=missing):
        from_env(env)


def test_mp_aes_key_alone_is_half_configured(base):
    with pytest.raises(SettingsError, match="MP_APP_ID"):
        from_env({**base, "MP_AES_KEY": AES})


def test_only_an_api_base_does_not_turn_a_channel_on(base):
    settings = from_env({**base, "WECOM_API_BASE": "http://fake/", "MP_API_BASE": "http://fake/"})
    assert settings.wecom is None and settings.mp is None


@pytest.mark.parametrize(("name", "value"), [
    ("WECOM_AES_KEY", "short"),
    ("WECOM_AES_KEY", AES + "A"),  # 44 characters
    ("WECOM_AES_KEY", "!" * 43),  # not Base64
    ("MP_AES_KEY", "abc"),
])
def test_bad_aes_key_is_named(base, name, value):
    env = {**base, **WECOM_ENV, **MP_ENV, name: value}
    with pytest.raises(SettingsError, match=name):
        from_env(env)


@pytest.mark.parametrize(("name", "value"), [
    ("WECOM_AGENT_ID", "app"),
    ("SCHEDULER_TICK_SECONDS", "often"),
    ("SCHEDULER_TICK_SECONDS", "0"),
    ("BOT_TIMEZONE", "Mars/Olympus"),
])
def test_bad_values_are_named(base, name, value):
    with pytest.raises(SettingsError, match=name):
        from_env({**base, **WECOM_ENV, name: value})


def test_settings_error_is_a_value_error():
    assert issubclass(SettingsError, ValueError)


# -- start-up --------------------------------------------------------------------------------------


def run_bot(env: dict[str, str], tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("WECOM_", "MP_", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "BOT_", "SCHEDULER_"))}
    clean.update(env)
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env=clean, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize(("env", "named"), [
    ({"WECOM_CORP_ID": "wx49f0ab532d5d035a", "WECOM_TOKEN": "t"}, "WECOM_AES_KEY"),
    ({k: v for k, v in WECOM_ENV.items() if k != "WECOM_SECRET"}, "WECOM_SECRET"),
    ({"MP_APP_ID": "wx2c2769f8efd9abc2", "MP_TOKEN": "t"}, "MP_SECRET"),
    ({**WECOM_ENV, "WECOM_AES_KEY": "not-a-key"}, "WECOM_AES_KEY"),
])
def test_python_m_bot_stops_and_names_the_variable(base, tmp_path, env, named):
    result = run_bot({**base, **env}, tmp_path, "db", "upgrade")
    assert result.returncode != 0
    assert named in result.stderr
    assert "启动失败" in result.stderr
    assert not (tmp_path / "z.sqlite3").exists()  # stopped before touching the database


def test_python_m_bot_starts_with_a_complete_environment(base, tmp_path):
    result = run_bot({**base, **WECOM_ENV, **MP_ENV}, tmp_path, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "数据库已升级" in result.stdout
    assert (tmp_path / "z.sqlite3").exists()
