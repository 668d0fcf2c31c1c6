"""The views wing: read models the faces (API, CLI, Portal) print. A view reads stored facts
and derives nothing a rule owns elsewhere: why a stage waits comes from `domain.readiness`,
who may act from `domain.roles`, what a release runs in from `records.deployments`."""
