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
