"""The repository ruleset that makes our context a required check on GitHub.

`scm protect` owns one ruleset per context and branch, named `infrastream: <context> on
<branch>`, so it can find it again, see that it is in place, or restore it after someone
edited it, without touching the repository's other rulesets or its branch protection.
When the token may not manage rules, `manual_steps` is what an admin has to click instead.
"""

from __future__ import annotations

from typing import Any


def name_for(context: str, branch: str) -> str:
    return f"infrastream: {context} on {branch}"


def wanted(name: str, branch: str, context: str, app_id: int | None) -> dict[str, Any]:
    """The ruleset body (`POST`/`PUT /repos/{owner}/{repo}/rulesets`): `context` must pass
    before anything lands on `branch`, and come from our App when we report as one."""
    check: dict[str, Any] = {"context": context}
    if app_id is not None:
        check["integration_id"] = app_id
    return {
        "name": name, "target": "branch", "enforcement": "active",
        "conditions": {"ref_name": {"include": [f"refs/heads/{branch}"], "exclude": []}},
        "rules": [{"type": "required_status_checks", "parameters": {
            "required_status_checks": [check],
            "strict_required_status_checks_policy": False}}],
    }


def satisfies(current: Any, want: dict[str, Any]) -> bool:
    """Whether the ruleset GitHub holds (`current`) still requires what `want` requires."""
    if not isinstance(current, dict) or current.get("enforcement") != "active":
        return False
    include = (current.get("conditions") or {}).get("ref_name", {}).get("include") or []
    if want["conditions"]["ref_name"]["include"][0] not in include:
        return False
    check = want["rules"][0]["parameters"]["required_status_checks"][0]
    for rule in current.get("rules") or []:
        if rule.get("type") == "required_status_checks":
            checks = (rule.get("parameters") or {}).get("required_status_checks") or []
            if any(c.get("context") == check["context"] and
                   c.get("integration_id") == check.get("integration_id") for c in checks):
                return True
    return False


def manual_steps(repository: str, branch: str, context: str, name: str, said: str,
                 settings_url: str) -> str:
    return "\n".join([
        f"The token may not change the rules of {repository} (GitHub said: {said}).",
        "A repository admin can require the check by hand:",
        f"  1. Open {settings_url} and choose New ruleset > New branch ruleset.",
        f"  2. Name it {name!r} and set Enforcement status to Active.",
        f"  3. Under Target branches choose Add target > Include by pattern: {branch}",
        "  4. Tick Require status checks to pass, choose Add checks and add: " + context,
        "  5. Save with Create.",
        "Classic branch protection works as well (Settings > Branches > Add rule: "
        f"{branch}, Require status checks to pass before merging: {context}).",
        "Or give the token the Administration: write permission (classic: `repo` as an "
        "admin) and run `infrastream scm protect` again.",
    ])
