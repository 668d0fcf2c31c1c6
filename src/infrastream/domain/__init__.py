"""Pure domain rules: release states and transitions, approval policy (no I/O, no clock)."""
