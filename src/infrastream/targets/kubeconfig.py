"""Which cluster a target talks to, and as whom: a kubeconfig context or the pod's account.

lightkube does the logging in: bearer tokens, token files, client certificates, CAs, and
exec plugins that print an ExecCredential (how EKS, GKE, AKS and OIDC logins work). This
module only chooses the entry the way kubectl does, which lightkube leaves to its caller:
several `KUBECONFIG` files merge (the first entry of a name wins), file names and exec
commands written relative to a kubeconfig resolve against that file, and a target without
a `context` (or with `in-cluster`) uses the service account Kubernetes mounts into the
pod, whose token file is re-read as it rotates. Every problem is a PermanentError that
says what to fix; nothing is read before a target needs it.

One compatibility step: lightkube runs exec plugins of `client.authentication.k8s.io`
v1alpha1 and v1beta1 only, while current kubeconfigs may say v1. The request and the
token in the reply are the same in all three, so a v1 entry is run as v1beta1.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import yaml
from lightkube.config.kubeconfig import KubeConfig, SingleConfig
from lightkube.config.models import Cluster, User

from infrastream.domain.errors import PermanentError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
IN_CLUSTER = "in-cluster"
_EXEC_V1 = "client.authentication.k8s.io/v1"
_EXEC_V1BETA1 = "client.authentication.k8s.io/v1beta1"
_FILES = {"clusters": ("certificate-authority",),
          "users": ("client-certificate", "client-key", "tokenFile")}


def resolve(context: str | None, environ: Mapping[str, str] | None = None) -> SingleConfig:
    """A target's `context`, or the in-cluster account when it names none (or `in-cluster`)."""
    if context is None or context == IN_CLUSTER:
        return in_cluster(environ)
    return from_kubeconfig(context, kubeconfig_paths(environ))


def in_cluster(environ: Mapping[str, str] | None = None,
               account: Path = SERVICE_ACCOUNT) -> SingleConfig:
    """The API server and service account of the pod Infrastream runs in."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
    if not host or not (account / "token").is_file():
        raise PermanentError("not running in a cluster (no KUBERNETES_SERVICE_HOST or service "
                             f"account token in {account}); set `context` in the target")
    host = f"[{host}]" if ":" in host else host
    ca = account / "ca.crt"
    config = KubeConfig.from_one(
        cluster=Cluster(server=f"https://{host}:{port}",
                        certificate_auth=str(ca) if ca.is_file() else None),
        user=User(token_file=str(account / "token")), context_name=IN_CLUSTER)
    return _single(config, IN_CLUSTER)


def kubeconfig_paths(environ: Mapping[str, str] | None = None) -> list[Path]:
    """`$KUBECONFIG` (several paths joined by `:`) or `~/.kube/config`."""
    env = os.environ if environ is None else environ
    listed = [Path(p).expanduser() for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    return listed or [Path("~/.kube/config").expanduser()]


def from_kubeconfig(context: str, paths: Sequence[Path]) -> SingleConfig:
    """The cluster and user of `context`, from the merged kubeconfig files `paths`."""
    merged: dict[str, dict[str, dict[str, Any]]] = {"clusters": {}, "users": {}, "contexts": {}}
    for path in paths:
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            continue
        except (OSError, yaml.YAMLError) as exc:
            raise PermanentError(f"cannot read kubeconfig {path}: {exc}") from exc
        for section, entries in merged.items():
            for entry in loaded.get(section) or []:
                name = str(entry.get("name"))
                if name not in entries and isinstance(entry, dict):
                    entries[name] = _absolute(section, entry, path.parent)
    if context not in merged["contexts"]:
        known = ", ".join(sorted(merged["contexts"])) or "none"
        where = ", ".join(str(p) for p in paths)
        raise PermanentError(f"kubeconfig context `{context}` not found in {where} "
                             f"(contexts: {known})")
    ctx = merged["contexts"][context].get("context") or {}
    for section, key in (("clusters", "cluster"), ("users", "user")):
        if key == "cluster" or ctx.get(key) is not None:
            if ctx.get(key) not in merged[section]:
                raise PermanentError(f"kubeconfig context `{context}` names {key} "
                                     f"`{ctx.get(key)}`, which no kubeconfig declares")
    cluster = merged["clusters"][ctx["cluster"]].get("cluster") or {}
    if not cluster.get("server"):
        raise PermanentError(f"kubeconfig cluster of context `{context}` has no server")
    user = merged["users"][ctx["user"]].get("user") or {} if ctx.get("user") else {}
    if "auth-provider" in user:
        raise PermanentError(f"kubeconfig user of context `{context}` logs in through an "
                             "auth provider, which kubectl removed in 1.26; use its exec "
                             "plugin (e.g. kubelogin, gke-gcloud-auth-plugin) instead")
    try:
        config = KubeConfig.from_dict(
            {section: list(entries.values()) for section, entries in merged.items()})
    except (msgspec.ValidationError, KeyError, TypeError) as exc:
        raise PermanentError(f"kubeconfig context `{context}` is malformed: {exc}") from exc
    return _single(config, context)


def _absolute(section: str, entry: dict[str, Any], base: Path) -> dict[str, Any]:
    """`entry` with the files and exec command it names relative to `base` made absolute."""
    body = dict(entry.get(section[:-1]) or {})
    for key in _FILES.get(section, ()):
        if body.get(key):
            body[key] = str(base / Path(str(body[key])).expanduser())
    plugin = body.get("exec")
    if isinstance(plugin, dict):
        plugin = dict(plugin)
        command = str(plugin.get("command", ""))
        if "/" in command and not Path(command).is_absolute():
            plugin["command"] = str(base / command)
        if plugin.get("apiVersion") == _EXEC_V1:
            plugin["apiVersion"] = _EXEC_V1BETA1
        body["exec"] = plugin
    return {**entry, section[:-1]: body}


def _single(config: KubeConfig, context: str) -> SingleConfig:
    chosen = config.get(context)
    assert chosen is not None  # `get` returns None only for a missing default context
    return chosen
