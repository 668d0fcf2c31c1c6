"""The engine wing: the level-triggered loop (`loop`), what one pass reads (`state`), the steps
it takes for a release (`steps`) and the jobs it hands worker threads (deployments, checks,
pre-release runs). It decides nothing on its own: when a stage may move on is the readiness
function of `domain.readiness`, fed by `records.stage_facts`."""
