"""What a `gitops` environment needs of its cluster, through the Kubernetes API.

The tree is the desired state and Infrastream never applies it; but two things cannot
travel through Git. Secret values (route `secrets.cluster`): Infrastream applies the
Secret `<app>-secrets` itself, by server-side apply, before the commit that needs it is
pushed, and removes it with the application. And the agent's verdict (`argocd` or `flux`):
after the push, the deployment waits for the agent to report the commit live (see
`gitops_agents`). Both use the cluster of their own kubeconfig context.
"""

from __future__ import annotations

from collections.abc import Callable

from lightkube.config.kubeconfig import SingleConfig

from infrastream.manifests.environment import ClusterSecrets, GitOpsTarget

from .base import DeployRequest
from .gitops_agents import Contains, await_agent
from .kube_api import KubeApi
from .kubernetes import apply_all, ours
from .render import NAME, app_set_of
from .render_secrets import render_secret


class GitOpsCluster:
    """Secret delivery and agent observation for gitops environments."""

    def __init__(self, resolve: Callable[[str | None], SingleConfig],
                 request_timeout: float = 10.0) -> None:
        self._resolve = resolve
        self.request_timeout = request_timeout

    def _api(self, context: str | None) -> KubeApi:
        return KubeApi(self._resolve(context), timeout=self.request_timeout)

    async def apply_secrets(self, request: DeployRequest, route: ClusterSecrets) -> list[str]:
        """Apply the Secrets of the request's applications (and prune those it dropped)."""
        name, app_set = request.environment.metadata.name, app_set_of(request.release)
        secrets = [s for s in (render_secret(a, name, app_set=app_set, namespace=route.namespace)
                               for a in request.apps) if s is not None]
        async with self._api(route.context) as api:
            changed = await apply_all(api, secrets)
            if request.prune:
                keep = {a.app for a in request.apps}
                for obj in await ours(api, "Secret", route.namespace, name, part_of=app_set):
                    if (obj["metadata"].get("labels") or {}).get(NAME) not in keep:
                        await api.delete("Secret", route.namespace, obj["metadata"]["name"])
                        changed.append(f"pruned secret/{obj['metadata']['name']}")
        return changed

    async def remove_secrets(self, environment: str, route: ClusterSecrets) -> None:
        async with self._api(route.context) as api:
            for obj in await ours(api, "Secret", route.namespace, environment):
                await api.delete("Secret", route.namespace, obj["metadata"]["name"])

    async def await_agent(self, settings: GitOpsTarget, commit: str, contains: Contains) -> str:
        """The agent's words once it reports `commit` live (PermanentError otherwise)."""
        agent = settings.argocd or settings.flux
        assert agent is not None
        async with self._api(agent.context) as api:
            return await await_agent(api, agent, commit, contains)
