"""Where a rollback of an environment goes by default (pure: the history is passed in).

The default target is the newest release that succeeded in the environment before the one
running there now *and was not itself rolled back from there since*: so two default
rollbacks in a row go further back (v3 → v2 → v1) instead of toggling between the last two.
A release that succeeded there again after being rolled back from is a candidate again.
"""

from __future__ import annotations

from collections.abc import Sequence


def rolled_back_from(history: Sequence[tuple[int, int]],
                     rollbacks: Sequence[tuple[int, int]]) -> set[int]:
    """The releases rolled back from in this environment since they last succeeded there.

    `history`: (deployment id, release id) of the environment's healthy deployments, newest
    first; `rollbacks`: (deployment id of the rollback, release rolled back from)."""
    newest_success: dict[int, int] = {}
    for deployment_id, release_id in history:
        newest_success.setdefault(release_id, deployment_id)
    return {release_id for deployment_id, release_id in rollbacks
            if deployment_id > newest_success.get(release_id, 0)}


def default_target(history: Sequence[tuple[int, int]],
                   rollbacks: Sequence[tuple[int, int]]) -> int | None:
    """The release a rollback without `--to` returns the environment to, or None."""
    if not history:
        return None
    current = history[0][1]
    excluded = rolled_back_from(history, rollbacks) | {current}
    return next((release_id for _, release_id in history if release_id not in excluded), None)
