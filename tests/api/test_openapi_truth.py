"""The OpenAPI document tells the truth: schemathesis sends generated requests to every
operation of a real server (real database, engine running) as the admin and as a
low-privilege user, and no answer is a 5xx, has an undeclared status, another media type or
a body that does not match its declared schema. /docs works without the network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from test_api import apply_example, cut_release, record_versions, stage_succeeded, wait_for

if TYPE_CHECKING:
    from conftest import Api

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES = 12
"""Generated requests per operation and caller (bounded: the suite runs on two cores)."""
PARTS = 2
"""Every caller's operations are run in this many tests (every PARTS-th operation each), so
that the workers share them instead of one running all of them."""
CALLERS = {"admin": ("admin", GenerationMode.POSITIVE),
           "qa": ("quinn", GenerationMode.POSITIVE),
           "release-manager (invalid input)": ("rita", GenerationMode.NEGATIVE)}


def _exercise(api: Api, token: str, label: str,
              mode: GenerationMode = GenerationMode.POSITIVE, part: int = 0,
              parts: int = 1) -> list[str]:
    """Run every operation (of every `parts`-th from `part`); the labels of the operations
    that failed, with why."""
    document = api.client().get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}
    every = sorted((result.ok() for result in schema.get_all_operations()),
                   key=lambda operation: operation.label)
    assert len(every) == sum(len(ops) for ops in document["paths"].values()) > 30
    operations = every[part::parts]
    calls: list[int] = []
    for operation in operations:

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), print_blob=False)
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: schemathesis.Case) -> None:
            calls.append(case.call_and_validate(base_url=api.url, headers=headers,
                                                checks=CHECKS, timeout=30).status_code)

        try:
            run()
        except Unsatisfiable:
            if mode is not GenerationMode.NEGATIVE:
                raise
            # no input of this operation can be invalid (no parameter, no schema'd body)
        except Exception as failure:  # collect them all, then report every one
            failures.append(f"{label} {operation.label}: {failure}")
    assert len(calls) >= 5 * len(operations), len(calls)
    return failures


@pytest.mark.parametrize("part", range(PARTS), ids=lambda part: f"part{part + 1}of{PARTS}")
@pytest.mark.parametrize("caller", CALLERS, ids=lambda caller: caller.split(" ")[0])
def test_every_operation_answers_as_its_openapi_says_for_admin_and_a_low_privilege_user(
        people: Api, caller: str, part: int) -> None:
    apply_example(people, checks=False)
    record_versions(people, "1.0.0")
    release = cut_release(people)
    wait_for(people.as_user("rita"), release, stage_succeeded(0))

    user, mode = CALLERS[caller]
    token = people.admin_token if user == "admin" else people.tokens[user]
    failures = _exercise(people, token, caller, mode, part, PARTS)

    assert failures == [], "\n\n".join(failures)


def test_the_docs_page_loads_its_assets_from_this_server(api: Api) -> None:
    page = api.client().get("/docs")
    script = api.client().get("/docs/assets/swagger-ui-bundle.js")
    style = api.client().get("/docs/assets/swagger-ui.css")

    assert page.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "/docs/assets/swagger-ui.css" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text.split("<body>")[1]
    assert script.status_code == 200 and len(script.content) > 100_000
    assert style.status_code == 200 and "swagger-ui" in style.text


def test_every_error_status_is_declared_as_a_problem(api: Api) -> None:
    document = api.client().get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            statuses = operation["responses"]
            assert "500" in statuses, (method, path)
            for status, response in statuses.items():
                if status[0] in "45":
                    assert list(response["content"]) == ["application/problem+json"], (
                        method, path, status)
                    assert response["content"]["application/problem+json"]["schema"] == {
                        "$ref": "#/components/schemas/Problem"}
            if method != "get" or "{" in path:
                assert "422" in statuses or not operation.get("parameters"), (method, path)
            if method in ("post", "put", "delete"):
                assert "x-audit" in operation, (method, path)
