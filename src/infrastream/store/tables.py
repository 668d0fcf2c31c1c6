"""The database schema, as SQLAlchemy Core tables (migrations in `migrations/` mirror it).

Rows are facts: a release's content never changes once written; stage runs and deployments
move through their states by compare-and-set updates (`WHERE state = :expected`), which is
what keeps two concurrent approvals or promotions from advancing a stage twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from infrastream.domain.release import canonical_json

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = BigInteger().with_variant(Integer(), "sqlite")
Time = DateTime(timezone=True)


class CanonicalJSON(TypeDecorator[Any]):
    """JSON written as its canonical text (sorted keys, compact, UTF-8): the stored text of an
    audit entry's `before`/`after` is then exactly what its hash covers, so verification
    splices it into the hashed bytes instead of decoding and re-encoding it (PostgreSQL's
    `json` type and SQLite keep the text as written)."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        def process(value: Any) -> str:
            return canonical_json(value).decode()
        return process

users = Table(
    "users", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(63), nullable=False, unique=True),
    Column("roles", JSON, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("created_by", String(63), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("email", String(254), nullable=True),
)

tokens = Table(
    "tokens", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", Time, nullable=False),
    Column("description", String(200), nullable=False, default=""),
    Column("name", String(63), nullable=False, default="", server_default=""),
    Column("created_by", String(63), nullable=True),
    Column("expires_at", Time, nullable=True),
    Column("revoked_at", Time, nullable=True),
    Column("revoked_by", String(63), nullable=True),
    Column("last_used_at", Time, nullable=True),
)
Index("ix_tokens_prefix", tokens.c.prefix)

sso_exchanges = Table(
    "sso_exchanges", metadata,
    Column("id_token_hash", String(64), primary_key=True),
    Column("exchanged_at", Time, nullable=False),
    Column("expires_at", Time, nullable=False),
)
"""The ID tokens exchanged for API tokens by `infrastream login --sso` (their sha256), so a
copied one cannot be exchanged again; a row goes once its ID token has expired."""

manifest_revisions = Table(
    "manifest_revisions", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("created_at", Time, nullable=False),
    Column("created_by", String(63), nullable=False),
    Column("source_root", Text, nullable=True),
    Column("sources", JSON, nullable=False),
    Column("summary", JSON, nullable=False),
    Column("manifest_source", String(63), nullable=True),
    Column("commit", String(64), nullable=True),
    Column("author", String(200), nullable=True),
)

manifest_objects = Table(
    "manifest_objects", metadata,
    Column("kind", String(32), primary_key=True),
    Column("name", String(63), primary_key=True),
    Column("revision_id", ForeignKey("manifest_revisions.id"), nullable=False),
    Column("body", JSON, nullable=False),
    Column("source", Text, nullable=False),
    Column("source_root", Text, nullable=True),
    Column("owner", String(63), nullable=True),
)

manifest_history = Table(
    "manifest_history", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("revision_id", ForeignKey("manifest_revisions.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("name", String(63), nullable=False),
    Column("change", String(16), nullable=False),
    Column("body", JSON, nullable=True),
)
Index("ix_manifest_history_object", manifest_history.c.kind, manifest_history.c.name,
      manifest_history.c.id)

manifest_sources = Table(
    "manifest_sources", metadata,
    Column("name", String(63), primary_key=True),
    Column("repository", Text, nullable=False),
    Column("branch", String(255), nullable=False),
    Column("path", Text, nullable=False),
    Column("scm", String(63), nullable=True),
    Column("interval", Integer, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("created_by", String(63), nullable=False),
    Column("state", String(16), nullable=False),
    Column("commit", String(64), nullable=True),
    Column("applied_commit", String(64), nullable=True),
    Column("applied_revision", Id, nullable=True),
    Column("synced_at", Time, nullable=True),
    Column("message", Text, nullable=False),
    Column("diagnostics", JSON, nullable=False),
    Column("requested_at", Time, nullable=True),
)
"""`requested_at`: a push webhook asked for a sync before the interval has passed."""

manifest_checks = Table(
    "manifest_checks", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source", String(63), nullable=False),
    Column("connection", String(63), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("number", Integer, nullable=False),
    Column("sha", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("verdict", String(16), nullable=True),
    Column("message", Text, nullable=False),
    Column("result", JSON, nullable=True),
    Column("requested_at", Time, nullable=False),
    Column("checked_at", Time, nullable=True),
    UniqueConstraint("source", "sha", name="uq_manifest_checks_source_sha"),
)
"""A manifest pull request's check: one per source and head commit. `state` is `queued`
until a worker validated the head's tree, then `done` (`verdict` success or failure) or
`superseded` (the pull request moved on before it was checked)."""
Index("ix_manifest_checks_state", manifest_checks.c.state)

teams = Table(
    "teams", metadata,
    Column("name", String(63), primary_key=True),
    Column("description", String(200), nullable=False),
    Column("handles", JSON, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("created_by", String(63), nullable=False),
)

team_members = Table(
    "team_members", metadata,
    Column("team", ForeignKey("teams.name", ondelete="CASCADE"), primary_key=True),
    Column("user", String(63), primary_key=True),
)

app_versions = Table(
    "app_versions", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("app", String(63), nullable=False),
    Column("image", String(512), nullable=False),
    Column("label", String(128), nullable=False),
    Column("commit", String(64), nullable=True),
    Column("recorded_at", Time, nullable=False),
    Column("recorded_by", String(63), nullable=False),
    Column("channel", String(16), nullable=False, default="main", server_default="main"),
    Column("pull_request", Integer, nullable=True),
    UniqueConstraint("app", "image", name="uq_app_versions_app_image"),
)
Index("ix_app_versions_app_id", app_versions.c.app, app_versions.c.id)
Index("ix_app_versions_app_commit", app_versions.c.app, app_versions.c.commit)

releases = Table(
    "releases", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("app_set", String(63), nullable=False),
    Column("name", String(63), nullable=False),
    Column("lane", String(16), nullable=False),
    Column("track", String(63), nullable=False),
    Column("digest", String(80), nullable=False),
    Column("content", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", Time, nullable=False),
    Column("created_by", String(63), nullable=False),
    Column("finished_at", Time, nullable=True),
    Column("incident", String(200), nullable=True),
    Column("source_root", Text, nullable=True),
    Column("base_release_id", Id, nullable=True),
    Column("guard_override", JSON, nullable=True),
    Column("abandoned", JSON, nullable=True),
    Column("number", Integer, nullable=True),
    UniqueConstraint("app_set", "name", name="uq_releases_app_set_name"),
)
"""`number` is N of a release named `vN` (NULL for any other name): the next auto-name is
one index probe (`max(number)` of the set), not a read of every name of the set."""
Index("ix_releases_state", releases.c.state, releases.c.id)
Index("ix_releases_number", releases.c.app_set, releases.c.number)

stage_runs = Table(
    "stage_runs", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("release_id", ForeignKey("releases.id", ondelete="CASCADE"), nullable=False),
    Column("stage_index", Integer, nullable=False),
    Column("state", String(24), nullable=False),
    Column("request_id", Integer, nullable=False, default=0),
    Column("requested_by", String(63), nullable=True),
    Column("requested_at", Time, nullable=True),
    Column("attempt", Integer, nullable=False, default=0),
    Column("deployed_at", Time, nullable=True),
    Column("finished_at", Time, nullable=True),
    Column("reason", Text, nullable=False, default=""),
    Column("updated_at", Time, nullable=False),
    Column("freeze_override", JSON, nullable=True),
    UniqueConstraint("release_id", "stage_index", name="uq_stage_runs_release_stage"),
)

approvals = Table(
    "approvals", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("stage_run_id", ForeignKey("stage_runs.id", ondelete="CASCADE"), nullable=False),
    Column("request_id", Integer, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("user", String(63), nullable=False),
    Column("role", String(63), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("comment", Text, nullable=False, default=""),
    Column("at", Time, nullable=False),
    UniqueConstraint("stage_run_id", "request_id", "user", "decision",
                     name="uq_approvals_once_per_person"),
)

deployments = Table(
    "deployments", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False, unique=True),
    Column("release_id", ForeignKey("releases.id", ondelete="CASCADE"), nullable=False),
    Column("stage_index", Integer, nullable=False),
    Column("environment", String(63), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", Time, nullable=False),
    Column("started_at", Time, nullable=True),
    Column("finished_at", Time, nullable=True),
    Column("message", Text, nullable=False, default=""),
    Column("result", JSON, nullable=True),
)
Index("ix_deployments_environment", deployments.c.environment, deployments.c.id)
Index("ix_deployments_deploying", deployments.c.environment, deployments.c.id,
      postgresql_where=deployments.c.state == "deploying",
      sqlite_where=deployments.c.state == "deploying")
"""Occupancy reads only active work: a partial index of the deployments now deploying."""
Index("ix_deployments_state", deployments.c.state, deployments.c.id)

check_runs = Table(
    "check_runs", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(250), nullable=False, unique=True),
    Column("release_id", ForeignKey("releases.id", ondelete="CASCADE"), nullable=False),
    Column("stage_index", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("environment", String(63), nullable=False),
    Column("app", String(63), nullable=False),
    Column("check_type", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("summary", Text, nullable=False, default=""),
    Column("output", Text, nullable=False, default=""),
    Column("started_at", Time, nullable=True),
    Column("finished_at", Time, nullable=True),
)

audit_log = Table(
    "audit_log", metadata,
    Column("seq", Id, primary_key=True, autoincrement=True),
    Column("at", Time, nullable=False),
    Column("actor", String(63), nullable=False),
    Column("action", String(63), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("object_id", String(200), nullable=False),
    Column("before", CanonicalJSON, nullable=True),
    Column("after", CanonicalJSON, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_audit_log_object", audit_log.c.object_type, audit_log.c.object_id)

audit_pending = Table(
    "audit_pending", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", Time, nullable=False),
    Column("actor", String(63), nullable=False),
    Column("action", String(63), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("object_id", String(200), nullable=False),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
)
"""Audit entries committed by their use case and not yet linked into the chain (the chainer
moves them to `audit_log`, see service.auditing.trail)."""

server_settings = Table(
    "server_settings", metadata,
    Column("key", String(63), primary_key=True),
    Column("value", Text, nullable=False),
)

job_leases = Table(
    "job_leases", metadata,
    Column("key", String(300), primary_key=True),
    Column("owner", String(200), nullable=True),
    Column("expires", Float, nullable=False),
)
"""Who runs a unit of work now (`service.records.leases`): one row per job key while claimed;
`expires` is wall-clock epoch seconds, renewed by the owner."""

server_nodes = Table(
    "server_nodes", metadata,
    Column("name", String(200), primary_key=True),
    Column("instance", String(64), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("seen", Float, nullable=False),
)
"""The live servers by node name (`service.records.nodes`), with a heartbeat."""

node_bindings = Table(
    "node_bindings", metadata,
    Column("environment", String(63), primary_key=True),
    Column("node", String(200), nullable=False),
    Column("bound", Float, nullable=False),
)
"""Which node runs a `local` environment's processes (bound at its first job, sticky)."""

secrets = Table(
    "secrets", metadata,
    Column("environment", String(63), primary_key=True),
    Column("app", String(63), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("ciphertext", Text, nullable=False),
    Column("updated_at", Time, nullable=False),
    Column("updated_by", String(63), nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints", metadata,
    Column("seq", Id, primary_key=True),
    Column("hash", String(64), nullable=False),
    Column("at", Time, nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("signature", Text, nullable=False),
)

prerelease_runs = Table(
    "prerelease_runs", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("app", String(63), nullable=False),
    Column("image", String(512), nullable=False),
    Column("ref", String(200), nullable=False),
    Column("commit", String(64), nullable=True),
    Column("environment", String(63), nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", Time, nullable=False),
    Column("created_by", String(63), nullable=False),
    Column("started_at", Time, nullable=True),
    Column("finished_at", Time, nullable=True),
    Column("summary", Text, nullable=False, default=""),
    Column("output", Text, nullable=False, default=""),
    Column("previous", JSON, nullable=True),
    Column("restored", Boolean, nullable=False, default=False),
    Column("snapshot", JSON, nullable=False),
    Column("cancel_reason", Text, nullable=True),
)
Index("ix_prerelease_runs_app", prerelease_runs.c.app, prerelease_runs.c.id)
Index("ix_prerelease_runs_running", prerelease_runs.c.environment, prerelease_runs.c.id,
      postgresql_where=prerelease_runs.c.state == "running",
      sqlite_where=prerelease_runs.c.state == "running")

rollbacks = Table(
    "rollbacks", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("environment", String(63), nullable=False),
    Column("from_release_id", ForeignKey("releases.id"), nullable=True),
    Column("to_release_id", ForeignKey("releases.id"), nullable=False),
    Column("deployment_id", ForeignKey("deployments.id"), nullable=True),
    Column("requested_by", String(63), nullable=False),
    Column("requested_at", Time, nullable=False),
    Column("reason", Text, nullable=False, default=""),
)

# What the portal and release status read most (a release page must not scan).
Index("ix_releases_production", releases.c.app_set, releases.c.state, releases.c.finished_at,
      releases.c.id)
Index("ix_deployments_release", deployments.c.release_id, deployments.c.stage_index,
      deployments.c.attempt)
Index("ix_check_runs_release", check_runs.c.release_id, check_runs.c.stage_index,
      check_runs.c.attempt)

environment_drift = Table(
    "environment_drift", metadata,
    Column("environment", String(63), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("release", String(130), nullable=False),
    Column("differences", JSON, nullable=False),
    Column("checked_at", Time, nullable=False),
)

environment_teardowns = Table(
    "environment_teardowns", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("environment", String(63), nullable=False),
    Column("deployment_id", Integer, nullable=False),
    Column("requested_by", String(63), nullable=False),
    Column("requested_at", Time, nullable=False),
    Column("reason", Text, nullable=False),
)
Index("ix_environment_teardowns_environment", environment_teardowns.c.environment,
      environment_teardowns.c.deployment_id)

environment_health = Table(
    "environment_health", metadata,
    Column("environment", String(63), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("release", String(130), nullable=False),
    Column("apps", JSON, nullable=False),
    Column("checked_at", Time, nullable=False),
)

# -- the SCM gate: connections, webhook deliveries, the status outbox, pull requests, merges --

scm_connections = Table(
    "scm_connections", metadata,
    Column("name", String(63), primary_key=True),
    Column("type", String(16), nullable=False),
    Column("settings", Text, nullable=False),
    Column("public", JSON, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("created_by", String(63), nullable=False),
)
"""`settings` is the Fernet ciphertext of the whole settings (token and webhook secret
inside); `public` repeats what may be shown (type, base URL, context, Portal URL)."""

scm_deliveries = Table(
    "scm_deliveries", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("connection", String(63), nullable=False),
    Column("delivery_id", String(100), nullable=True),
    Column("claimed_id", String(100), nullable=False),
    Column("event", String(64), nullable=False),
    Column("repository", String(255), nullable=True),
    Column("sender", String(100), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("received_at", Time, nullable=False),
    UniqueConstraint("connection", "delivery_id", name="uq_scm_deliveries_connection_delivery"),
)
"""`delivery_id` is set only for verified deliveries (the key a replay is ignored by);
`claimed_id` is what the headers said, also for refused ones."""
Index("ix_scm_deliveries_connection", scm_deliveries.c.connection, scm_deliveries.c.id)

scm_statuses = Table(
    "scm_statuses", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("connection", String(63), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("sha", String(64), nullable=False),
    Column("context", String(255), nullable=False),
    Column("pending_key", String(64), nullable=True, unique=True),
    Column("state", String(16), nullable=False),
    Column("description", Text, nullable=False),
    Column("target_url", Text, nullable=True),
    Column("ref", String(255), nullable=True),
    Column("subject", String(200), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Time, nullable=False),
    Column("claimed_until", Time, nullable=True),
    Column("last_error", Text, nullable=False),
    Column("receipt", JSON, nullable=True),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    Column("delivered_at", Time, nullable=True),
    Column("output", JSON, nullable=True),
)
"""The outbox of commit statuses. `pending_key` (a digest of connection, repository, sha and
context) is set while a row is undelivered, so a newer status for the same commit and context
replaces the older one instead of queueing behind it; `revision` tells a delivery that its
row was replaced meanwhile. `output` is what only check runs show: title, summary (Markdown)
and annotations on files and lines."""
Index("ix_scm_statuses_due", scm_statuses.c.outcome, scm_statuses.c.next_attempt_at)

gate_heads = Table(
    "gate_heads", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("connection", String(63), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("number", Integer, nullable=True),
    Column("ref", String(255), nullable=False),
    Column("sha", String(64), nullable=False),
    Column("base_branch", String(255), nullable=False),
    Column("head_branch", String(255), nullable=False),
    Column("author", String(100), nullable=False),
    Column("title", Text, nullable=False),
    Column("web_url", Text, nullable=False),
    Column("delivery_id", String(100), nullable=False),
    Column("state", String(16), nullable=False),
    Column("superseded_by", String(64), nullable=True),
    Column("reason", Text, nullable=False),
    Column("done", Boolean, nullable=False),
    Column("reported", JSON, nullable=True),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    UniqueConstraint("connection", "repository", "ref", "sha", name="uq_gate_heads_head"),
)
"""One head commit of a pull request (`ref` pull/N) or merge queue group (its head ref)."""
Index("ix_gate_heads_done", gate_heads.c.done, gate_heads.c.id)

gate_runs = Table(
    "gate_runs", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("head_id", ForeignKey("gate_heads.id", ondelete="CASCADE"), nullable=False),
    Column("app", String(63), nullable=False),
    Column("state", String(16), nullable=False),
    Column("run_id", ForeignKey("prerelease_runs.id"), nullable=True),
    Column("reason", Text, nullable=False),
    Column("updated_at", Time, nullable=False),
    UniqueConstraint("head_id", "app", name="uq_gate_runs_head_app"),
)
"""What one head asks of one application: its pre-release run, once the build is known."""

gate_merges = Table(
    "gate_merges", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("connection", String(63), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("branch", String(255), nullable=False),
    Column("sha", String(64), nullable=False),
    Column("app", String(63), nullable=False),
    Column("app_set", String(63), nullable=False),
    Column("pusher", String(100), nullable=False),
    Column("delivery_id", String(100), nullable=False),
    Column("state", String(16), nullable=False),
    Column("version_id", ForeignKey("app_versions.id"), nullable=True),
    Column("built_at", Time, nullable=True),
    Column("release_id", ForeignKey("releases.id"), nullable=True),
    Column("reason", Text, nullable=False),
    Column("done", Boolean, nullable=False),
    Column("reported", JSON, nullable=True),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    UniqueConstraint("connection", "repository", "sha", "app", name="uq_gate_merges_commit_app"),
)
"""A merge (push) to an application's branch: its mainline build, and the release it cut."""
Index("ix_gate_merges_done", gate_merges.c.done, gate_merges.c.id)
Index("ix_gate_merges_release", gate_merges.c.release_id)


notification_channels = Table(
    "notification_channels", metadata,
    Column("name", String(63), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("settings", Text, nullable=False),
    Column("public", JSON, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("created_by", String(63), nullable=False),
)
"""Where notifications go (`service.notification_channels`): `kind` is slack, teams, email or
webhook; `settings` is the Fernet ciphertext of the whole settings (webhook URLs, SMTP
password, HMAC key: all secrets); `public` repeats what may be shown."""

notification_subscriptions = Table(
    "notification_subscriptions", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel", String(63), nullable=False),
    Column("track", String(63), nullable=True),
    Column("selector", String(16), nullable=False),
    Column("value", String(63), nullable=False),
    Column("events", JSON, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("created_by", String(63), nullable=False),
    UniqueConstraint("channel", "track", "selector", "value",
                     name="uq_notification_subscriptions_channel"),
)
"""Who hears what: on `channel`, events of `track` (NULL: every track) that concern
`selector`/`value` (role/qa, team/payments, user/alice, or everyone/*), of the kinds in
`events` (a list of `domain.notifications.EventKind` values; empty: all kinds)."""

notification_events = Table(
    "notification_events", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(300), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("track", String(63), nullable=False),
    Column("release", String(130), nullable=True),
    Column("payload", JSON, nullable=False),
    Column("created_at", Time, nullable=False),
)
"""What happened that people are told about: one row per `domain.notifications.Notification`
(`payload` is its JSON), `key` deduplicates it (the same wait of the same stage run for the
same role is one event however many servers or passes see it)."""

notification_deliveries = Table(
    "notification_deliveries", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", Integer, nullable=False),
    Column("channel", String(63), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Time, nullable=False),
    Column("claimed_until", Time, nullable=True),
    Column("last_error", Text, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("delivered_at", Time, nullable=True),
    UniqueConstraint("event_id", "channel", name="uq_notification_deliveries_event_id"),
    Index("ix_notification_deliveries_due", "outcome", "next_attempt_at"),
)
"""The notification outbox: one row per event and channel; `outcome` pending → delivered or
failed, retried with backoff (`next_attempt_at`), claimed for one attempt (`claimed_until`)."""
