"""Every `infrastream` command, by name, and where it lives: loaded when it is run.

A command line tool that imports every command module at start pays for all of them on every
call (the manifest models, cryptography, SQLAlchemy for `serve`…); kubectl answers in a tenth
of a second. So the root group knows each command only as `module:attribute` and imports the
module when the command is asked for (`--help` lists them all, and only then loads them all).
"""

from __future__ import annotations

import importlib
from typing import Any

import typer

# Typer carries its own click (since 0.26): the types its groups and commands are made of.
from typer import _click as click

COMMANDS: dict[str, str] = {
    "validate": "validate_cmd:validate",
    "plan": "plan_cmd:plan",
    "schema": "schema_cmd:schema",
    "init": "init_cmd:init",
    "serve": "serve_cmd:serve",
    "demo": "demo_cmd:demo",
    "login": "login_cmd:login",
    "whoami": "login_cmd:whoami",
    "apply": "apply_cmd:apply",
    "get": "apply_cmd:get",
    "describe": "apply_cmd:describe",
    "diff": "apply_cmd:diff",
    "delete": "apply_cmd:delete",
    "status": "env_cmd:status",
    "rollback": "lanes_cmd:rollback",
    "codeowners": "source_cmd:codeowners",
    "insights": "insights_cmd:insights",
    "user": "user_cmd:user_app",
    "token": "token_cmd:token_app",
    "team": "team_cmd:team_app",
    "source": "source_cmd:source_app",
    "version": "version_cmd:version_app",
    "release": "release_cmd:release_app",
    "env": "env_cmd:env_app",
    "audit": "audit_cmd:audit_app",
    "hotfix": "lanes_cmd:hotfix_app",
    "prerelease": "lanes_cmd:prerelease_app",
    "secret": "secret_cmd:secret_app",
    "evidence": "evidence_cmd:evidence_app",
    "scm": "scm_cmd:scm_app",
    "notifications": "notify_cmd:notifications_app",
}
"""Command name → `module:attribute` (a Typer app for a group, else a command function)."""


def load(name: str) -> click.Command:
    """The click command `name`, built from its Typer function or app."""
    module_name, attribute = COMMANDS[name].split(":")
    found: Any = getattr(importlib.import_module(f"{__package__}.{module_name}"), attribute)
    holder = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                         rich_markup_mode=None)
    if isinstance(found, typer.Typer):
        holder.add_typer(found, name=name)  # a group, always (as `add_typer` on the root)
        group = typer.main.get_command(holder)
        assert isinstance(group, typer.core.TyperGroup)
        command = group.commands[name]
    else:
        holder.command(name)(found)
        command = typer.main.get_command(holder)  # a lone command is returned as itself
    command.name = name
    return command


class LazyGroup(typer.core.TyperGroup):
    """The root group: commands are loaded on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in COMMANDS:
            return found
        command = load(cmd_name)
        self.add_command(command, cmd_name)
        return command
