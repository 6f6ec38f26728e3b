"""/healthz answers while the process serves; /readyz only when the database (and Redis, if set) answer."""

from __future__ import annotations

import pytest

from bot.app import create_app
from config.settings import Settings
from tests.conftest import REDIS_URL, needs_redis, redis_prefix

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"


def build(tmp_path, clock, database_url: str, redis_url: str | None = None):
    settings = Settings(database_url=database_url, redis_url=redis_url, secret_key="k",
                        instance_dir=tmp_path / "instance", redis_prefix=redis_prefix())
    app = create_app(settings, clock=clock)
    return app


@pytest.fixture
def make_client(tmp_path, clock):
    apps = []

    def make(database_url: str, redis_url: str | None = None):
        app = build(tmp_path, clock, database_url, redis_url)
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["zhitong"].db.dispose()


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.data == b"ok"


def test_readyz_with_the_test_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.data == b"ok"


def test_readyz_with_a_fresh_sqlite_file(make_client, tmp_path):
    assert make_client(f"sqlite:///{tmp_path / 'fresh.sqlite3'}").get("/readyz").status_code == 200


@pytest.mark.parametrize("url", [
    "sqlite:////nonexistent-dir-zhitong/sub/db.sqlite3",
    "postgresql+psycopg://postgres@127.0.0.1:1/test",
    "postgresql+psycopg://nobody@127.0.0.1:5432/no_such_database_zhitong",
], ids=["sqlite_missing_dir", "postgres_closed_port", "postgres_no_such_database"])
def test_readyz_503_when_the_database_is_unreachable(make_client, url):
    client = make_client(url)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "数据库不可用" in response.get_data(as_text=True)
    assert client.get("/healthz").status_code == 200  # alive, just not ready


def test_readyz_503_when_redis_is_configured_but_down(make_client, settings):
    client = make_client(settings.database_url, CLOSED_PORT_REDIS)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_data(as_text=True) == "Redis 不可用"
    assert client.get("/healthz").status_code == 200


def test_readyz_names_both_when_both_are_down(make_client):
    response = make_client("postgresql+psycopg://postgres@127.0.0.1:1/test", CLOSED_PORT_REDIS).get("/readyz")
    assert response.status_code == 503
    assert response.get_data(as_text=True).splitlines() == ["数据库不可用：OperationalError", "Redis 不可用"]


@needs_redis
def test_readyz_200_with_redis(make_client, settings):
    assert make_client(settings.database_url, REDIS_URL).get("/readyz").status_code == 200


def test_health_endpoints_refuse_other_methods(client):
    assert client.post("/healthz").status_code == 405
    assert client.post("/readyz").status_code == 405
