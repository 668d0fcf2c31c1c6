"""The OpenAPI document tells the truth: schemathesis sends generated requests to every
operation of a real server (real database, engine running) as the admin and as a
low-privilege user, and no answer is a 5xx, has an undeclared status, another media type or
a body that does not match its declared schema. /docs works without the network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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


def _exercise(api: Api, token: str, label: str,
              mode: GenerationMode = GenerationMode.POSITIVE) -> list[str]:
    """Run every operation; the labels of the operations that failed, with why."""
    document = api.client().get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(ops) for ops in document["paths"].values()) > 30
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


def test_every_operation_answers_as_its_openapi_says_for_admin_and_a_low_privilege_user(
        people: Api) -> None:
    apply_example(people, checks=False)
    record_versions(people, "1.0.0")
    release = cut_release(people)
    wait_for(people.as_user("rita"), release, stage_succeeded(0))

    failures = _exercise(people, people.admin_token, "admin")
    failures += _exercise(people, people.tokens["quinn"], "qa")
    failures += _exercise(people, people.tokens["rita"], "release-manager (invalid input)",
                          GenerationMode.NEGATIVE)

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
