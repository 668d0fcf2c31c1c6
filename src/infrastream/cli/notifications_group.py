"""`infrastream notifications`: one command group that both sides of notifications fill.

The group exists once, here; each module of it exposes `register(group)` and adds its own
commands: the channels and the deliveries (`notify_cmd`: where notifications go) and the
subscriptions (`notify_subscriptions_cmd`: who hears what). The modules load when the group
is asked for, like every command (`commands`).
"""

from __future__ import annotations

import importlib

import typer

notifications_app = typer.Typer(
    help="Who is told what, and where: channels, subscriptions, deliveries.",
    no_args_is_help=True)

MODULES = ("notify_cmd", "notify_subscriptions_cmd")
"""The modules whose commands make up the group."""

for _module in MODULES:
    importlib.import_module(f"{__package__}.{_module}").register(notifications_app)
