"""Moving a `local` environment off a dead node (`service.bindings`, issue 13 item 4): refused
while the node it is bound to is alive, audited when done, and only to a node that exists."""

from __future__ import annotations

import subprocess

import pytest
from sqlalchemy import select, update
from story import PLATFORM, RELEASE_MANAGER, Story

from infrastream.domain.errors import Conflict, Forbidden, NotFound
from infrastream.service.bindings import bind
from infrastream.service.records.nodes import Node
from infrastream.store.tables import audit_log, node_bindings, server_nodes


def _dead_pid() -> int:
    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


def test_a_local_environment_moves_to_another_node_only_once_its_node_is_dead(
        tmp_path, database_url):
    story = Story.begin(tmp_path, database_url)
    try:
        story.apply_manifests()
        db = story.services.db
        a, b = Node(db, "node-a", 30), Node(db, "node-b", 30)
        a.register()
        b.register()
        assert a.serves("development")  # the first node to claim work there binds it

        with pytest.raises(Forbidden):
            bind(story.services, RELEASE_MANAGER, "development", "node-b")
        with pytest.raises(NotFound, match="no server has run as node 'node-z'"):
            bind(story.services, PLATFORM, "development", "node-z")
        with pytest.raises(Conflict) as alive:  # node-a's process still runs
            bind(story.services, PLATFORM, "development", "node-b")
        assert alive.value.reason.startswith(
            "development is bound to node 'node-a', which is alive (pid ")
        assert alive.value.reason.endswith("): stop that server first")

        with db.begin() as conn:  # node-a's server is gone
            conn.execute(update(server_nodes).where(server_nodes.c.name == "node-a")
                         .values(pid=_dead_pid()))
        moved = bind(story.services, PLATFORM, "development", "node-b")
        assert (moved.previous, moved.node) == ("node-a", "node-b")
        with db.connect() as conn:
            assert conn.execute(select(node_bindings.c.node).where(
                node_bindings.c.environment == "development")).scalar() == "node-b"
            entry = conn.execute(select(audit_log).where(
                audit_log.c.action == "environment.bind")).one()
        assert (entry.actor, entry.object_id, entry.before, entry.after) == (
            PLATFORM.name, "development", {"node": "node-a"}, {"node": "node-b"})
        assert Node(db, "node-b", 30).serves("development")
        a.forget()
        assert not a.serves("development")  # node-a, back, no longer runs it
    finally:
        story.finish()
