"""Automated gates: integration tests, HTTP health and soak checks of a stage."""
