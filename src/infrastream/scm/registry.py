"""SCM providers by type name, each with its own connection settings model.

The service layer stores a connection as its type plus settings and asks the registry for a
provider; it never imports `github` or `gitlab`:

    config = registry.parse_config({"type": "gitlab", "base_url": "https://gitlab.example.com",
                                    "token": token, "webhook_secret": secret})
    provider = registry.build(config)          # an ScmProvider

`parse_config` raises `Invalid` with one diagnostic-like line per wrong field (never the
value: these models hold secrets). Settings models keep secrets as `SecretStr`, so repr,
str and `model_dump_json()` show `**********`; read a value with `.get_secret_value()`
only where it is sent. A test or an embedding may `register` another type or replace one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from infrastream.domain.errors import Invalid, PermanentError

from .base import ScmProvider
from .github import GitHubConfig, GitHubProvider
from .gitlab import GitLabConfig, GitLabProvider

ProviderFactory = Callable[[Any, httpx.BaseTransport | None], ScmProvider]
"""Builds a provider from its (validated) settings and an optional httpx transport."""


@dataclass(frozen=True)
class ProviderType:
    name: str
    config_model: type[BaseModel]
    factory: ProviderFactory


BUILTIN = (
    ProviderType("github", GitHubConfig,
                 lambda config, transport: GitHubProvider(config, transport=transport)),
    ProviderType("gitlab", GitLabConfig,
                 lambda config, transport: GitLabProvider(config, transport=transport)),
)


class ScmRegistry:
    def __init__(self, *, builtin: bool = True) -> None:
        self._types: dict[str, ProviderType] = {t.name: t for t in BUILTIN} if builtin else {}
        self._lock = threading.Lock()

    @property
    def type_names(self) -> tuple[str, ...]:
        return tuple(sorted(self._types))

    def register(self, provider_type: ProviderType) -> None:
        with self._lock:
            self._types[provider_type.name] = provider_type

    def config_model(self, type_name: str) -> type[BaseModel]:
        return self._type(type_name).config_model

    def parse_config(self, data: Mapping[str, Any]) -> BaseModel:
        """Validated settings for `data["type"]`; Invalid names every wrong field."""
        type_name = data.get("type")
        if not isinstance(type_name, str):
            raise Invalid(f"a connection needs a `type`: one of {', '.join(self.type_names)}")
        model = self._type(type_name, error=Invalid).config_model
        try:
            return model.model_validate(dict(data))
        except ValidationError as exc:
            problems = [f"{'.'.join(str(p) for p in e['loc']) or type_name}: {e['msg']}"
                        for e in exc.errors(include_input=False, include_url=False)]
            raise Invalid(f"the {type_name} connection settings are wrong: "
                          + "; ".join(problems), problems=problems) from None

    def build(self, config: BaseModel, *,
              transport: httpx.BaseTransport | None = None) -> ScmProvider:
        type_name = getattr(config, "type", None)
        if not isinstance(type_name, str):
            raise PermanentError("connection settings without a type")
        return self._type(type_name).factory(config, transport)

    def _type(self, type_name: str, *,
              error: type[Invalid] | type[PermanentError] = PermanentError) -> ProviderType:
        with self._lock:
            found = self._types.get(type_name)
        if found is None:
            known = ", ".join(self.type_names) or "none"
            raise error(f"no `{type_name}` SCM provider is available (available: {known})",
                        type_name=type_name)
        return found
