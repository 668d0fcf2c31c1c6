"""Liveness and readiness mean something: /readyz fails, with the reason, when the database
schema is not the one this server runs, and recovers when it is."""

from __future__ import annotations

from sqlalchemy import text


def test_livez_answers_and_readyz_follows_the_database_schema(api):
    client = api.client()
    assert client.get("/livez").json() == {"ok": True}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["migrations"] == "current"
    with api.services.db.begin() as conn:
        newest = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(text("UPDATE alembic_version SET version_num = '0005'"))
    stale = client.get("/readyz")
    assert stale.status_code == 503
    assert stale.headers["content-type"].startswith("application/problem+json")
    assert "schema is at 0005" in stale.json()["detail"]
    with api.services.db.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": newest})
    assert client.get("/readyz").status_code == 200


def test_readyz_fails_when_the_engine_loop_stalls(api):
    client = api.client()
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["engine"] == "passing"
    api.engine.stop()  # the loop no longer passes; its last pass ages past the limit
    api.services.heartbeat.passed_at -= api.services.heartbeat.stall_after + 1
    stalled = client.get("/readyz")
    assert stalled.status_code == 503
    assert "engine loop last finished a pass" in stalled.json()["detail"]
    assert client.get("/livez").status_code == 200


def test_readyz_fails_when_the_database_is_gone(tmp_path, serve_app):
    """A PostgreSQL database dropped under a running server: not ready, with the reason."""
    import uuid

    from sqlalchemy import create_engine

    from infrastream.api.app import create_app
    from infrastream.service.context import open_services

    name = f"gone_{uuid.uuid4().hex[:10]}"
    pg_admin_url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    services = open_services(tmp_path, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    server, thread, url = serve_app(create_app(services))
    try:
        import httpx
        assert httpx.get(f"{url}/readyz").status_code == 200
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        gone = httpx.get(f"{url}/readyz")
        assert gone.status_code == 503
        assert "does not answer" in gone.json()["detail"]
        assert httpx.get(f"{url}/livez").status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        services.db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
