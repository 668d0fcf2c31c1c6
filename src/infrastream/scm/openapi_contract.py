"""GitHub's official REST description as a contract that requests are checked against.

The fake GitHub must refuse what GitHub would refuse, or our client could drift from the
real API while every test stays green. So each request is matched against the OpenAPI 3.0
description GitHub publishes (npm `@octokit/openapi`, `generated/api.github.com.json`):
the path must match a template and the method must be described for it, every path and
query parameter must be described and of its schema's type, and the JSON body must be
valid against the operation's request-body schema (`$ref`s resolved, OpenAPI's
`nullable: true` read as "or null", Draft 4 semantics as OpenAPI 3.0 specifies).

This is a little stricter than GitHub, on purpose: an undescribed query parameter, which
GitHub would silently ignore, is a violation here too.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator

DESCRIPTION_FILE = Path("@octokit/openapi/generated/api.github.com.json")
ENV_VAR = "INFRASTREAM_GITHUB_OPENAPI"
SKIP_KEYS = frozenset({"description", "example", "examples", "externalDocs", "title"})
_CACHE: dict[Path, OpenApiDescription] = {}
_CACHE_LOCK = threading.Lock()


def find_description() -> Path:
    """Where the description is: $INFRASTREAM_GITHUB_OPENAPI, or tests/npm's node_modules
    of this checkout (installed by `./dev.sh test` or `npm ci --prefix tests/npm`)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    here = Path(__file__).resolve()
    for root in (*here.parents, Path.cwd()):
        candidate = root / "tests" / "npm" / "node_modules" / DESCRIPTION_FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        "GitHub's REST description (npm @octokit/openapi) is not installed: run "
        f"`npm ci --prefix tests/npm` (./dev.sh test does), or set {ENV_VAR}")


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    operation_id: str
    spec: Mapping[str, Any]
    root: Mapping[str, Any]

    def violations(self, path_params: Mapping[str, str],
                   query: Mapping[str, tuple[str, ...]], body: bytes,
                   content_type: str) -> list[str]:
        problems: list[str] = []
        declared = {p["name"]: p for p in self.parameters}
        for name, value in path_params.items():
            problems += _parameter_problems(declared.get(name), name, value, "path", self.root)
        for name, values in query.items():
            param = declared.get(name)
            if param is None or param.get("in") != "query":
                problems.append(f"query parameter {name!r} is not described for "
                                f"{self.operation_id}")
                continue
            for value in values:
                problems += _parameter_problems(param, name, value, "query", self.root)
        for param in self.parameters:
            if param.get("in") == "query" and param.get("required") and param["name"] not in query:
                problems.append(f"required query parameter {param['name']!r} is missing")
        problems += self._body_problems(body, content_type)
        return problems

    @cached_property
    def parameters(self) -> list[dict[str, Any]]:
        return [_deref(p, self.root) for p in self.spec.get("parameters", [])]

    @cached_property
    def body_validator(self) -> Draft4Validator | None:
        request_body = _deref(self.spec.get("requestBody"), self.root)
        if not request_body:
            return None
        schema = request_body.get("content", {}).get("application/json", {}).get("schema")
        return Draft4Validator(json_schema(schema, self.root)) if schema else None

    def _body_problems(self, body: bytes, content_type: str) -> list[str]:
        request_body = _deref(self.spec.get("requestBody"), self.root) or {}
        if not body.strip():
            return ["a request body is required"] if request_body.get("required") else []
        if not request_body:
            return [f"{self.operation_id} takes no request body"]
        if "json" not in content_type:
            return [f"the body must be application/json, not {content_type or 'untyped'}"]
        try:
            document = json.loads(body)
        except ValueError:
            return ["the body is not JSON"]
        validator = self.body_validator
        if validator is None:
            return []
        return [f"body{_where(e.absolute_path)}: {e.message}"
                for e in sorted(validator.iter_errors(document), key=lambda e: list(e.path))]


class OpenApiDescription:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.version = str(document.get("info", {}).get("version", ""))
        self._routes: list[tuple[re.Pattern[str], str]] = []
        self._operations: dict[tuple[str, str], Operation] = {}
        for template in document["paths"]:
            pattern = re.sub(r"\\\{([a-zA-Z0-9_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            self._routes.append((re.compile(f"^{pattern}$"), template))
        # Literal segments win over parameters: /rulesets/rule-suites before /rulesets/{id}.
        self._routes.sort(key=lambda r: -len(re.sub(r"\{[^}]+\}", "", r[1])))

    @classmethod
    def load(cls, path: Path | None = None) -> OpenApiDescription:
        """The description at `path` (see `find_description`), parsed once per process."""
        resolved = (path or find_description()).resolve()
        with _CACHE_LOCK:
            if resolved not in _CACHE:
                _CACHE[resolved] = cls(json.loads(resolved.read_text(encoding="utf-8")))
            return _CACHE[resolved]

    def match(self, method: str, path: str) -> tuple[Operation | None, dict[str, str], bool]:
        """The operation for `method path`, its path parameters, and whether the path exists."""
        for pattern, template in self._routes:
            found = pattern.match(path)
            if found is None:
                continue
            spec = self.document["paths"][template].get(method.lower())
            if spec is None:
                return None, {}, True
            key = (method.upper(), template)
            if key not in self._operations:  # one Operation each, so validators are built once
                self._operations[key] = Operation(method.upper(), template,
                                                  spec.get("operationId", ""), spec, self.document)
            return self._operations[key], found.groupdict(), True
        return None, {}, False


def json_schema(node: Any, root: Mapping[str, Any], stack: tuple[str, ...] = ()) -> Any:
    """An OpenAPI 3.0 schema as a self-contained JSON Schema (Draft 4)."""
    if isinstance(node, list):
        return [json_schema(item, root, stack) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        if ref in stack:
            return {}  # a recursive schema: accept anything below the cycle
        return json_schema(_pointer(root, ref), root, (*stack, ref))
    out = {k: json_schema(v, root, stack) for k, v in node.items()
           if k not in SKIP_KEYS and not k.startswith("x-") and k != "nullable"}
    if "properties" in node:
        out["properties"] = {name: json_schema(schema, root, stack)
                             for name, schema in node["properties"].items()}
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _parameter_problems(param: Mapping[str, Any] | None, name: str, value: str,
                        where: str, root: Mapping[str, Any]) -> list[str]:
    if param is None:
        return [f"{where} parameter {name!r} is not described"]
    schema = param.get("schema", {})
    kind = schema.get("type")
    typed: Any = value
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", value):
            return [f"{where} parameter {name!r} must be an integer, got {value!r}"]
        typed = int(value)
    elif kind == "boolean":
        if value not in ("true", "false"):
            return [f"{where} parameter {name!r} must be true or false, got {value!r}"]
        typed = value == "true"
    return [f"{where} parameter {name!r}: {e.message}"
            for e in Draft4Validator(json_schema(schema, root)).iter_errors(typed)]


def _deref(node: Any, root: Mapping[str, Any]) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = _pointer(root, node["$ref"])
    return node


def _pointer(root: Mapping[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are supported, not {ref}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _where(path: Any) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
