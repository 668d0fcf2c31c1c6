"""Use cases: transactions, authorization checks and the engine loop, shared by every face."""
