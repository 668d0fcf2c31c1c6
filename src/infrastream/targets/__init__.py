"""Deploy targets: how an environment is actually deployed to (local, noop, …)."""
