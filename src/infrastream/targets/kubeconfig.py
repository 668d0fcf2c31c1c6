"""Where a cluster is and how to log in to it: a kubeconfig context or the pod's own account.

A small reader of what platform teams actually put in a kubeconfig (server, CA, bearer
token or token file, client certificate, `insecure-skip-tls-verify`), and of the in-cluster
service account Kubernetes mounts into every pod. Exec plugins and auth providers are not
run: a server should not shell out to cloud CLIs, so those contexts are refused with a hint.
Files of several `KUBECONFIG` paths merge as kubectl merges them (the first name wins), and
relative file names resolve against the kubeconfig that mentions them.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infrastream.domain.errors import PermanentError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class ClusterConfig:
    """How to reach one API server. Secrets stay in memory or in the files they came from."""

    server: str
    token: str | None = None
    token_file: Path | None = None
    """Read at every connection: projected service-account tokens rotate."""
    ca_file: Path | None = None
    ca_pem: str | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    cert_pem: str | None = None
    key_pem: str | None = None
    insecure: bool = False

    def bearer_token(self) -> str | None:
        if self.token_file is not None:
            try:
                return self.token_file.read_text().strip()
            except OSError as exc:
                raise PermanentError(
                    f"cannot read the token file {self.token_file}: {exc}") from exc
        return self.token

    def verify(self) -> ssl.SSLContext | bool:
        """What httpx should verify the server with (and present as the client)."""
        if self.insecure:
            return False
        if not self.server.startswith("https://"):
            return False  # plain HTTP (e.g. `kubectl proxy`): no TLS, so nothing to verify
        try:
            context = ssl.create_default_context(
                cafile=str(self.ca_file) if self.ca_file else None, cadata=self.ca_pem)
            if self.cert_file is not None:
                context.load_cert_chain(self.cert_file, self.key_file)
            elif self.cert_pem is not None:
                _load_pem_chain(context, self.cert_pem, self.key_pem)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise PermanentError(f"bad TLS settings for {self.server}: {exc}") from exc
        return context


def in_cluster(environ: Mapping[str, str] | None = None,
               account: Path = SERVICE_ACCOUNT) -> ClusterConfig:
    """The API server and service account of the pod Infrastream runs in."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
    if not host or not (account / "token").is_file():
        raise PermanentError("not running in a cluster (no KUBERNETES_SERVICE_HOST or service "
                             f"account token in {account}); set `context` in the target")
    host = f"[{host}]" if ":" in host else host
    ca = account / "ca.crt"
    return ClusterConfig(server=f"https://{host}:{port}", token_file=account / "token",
                         ca_file=ca if ca.is_file() else None)


def kubeconfig_paths(environ: Mapping[str, str] | None = None) -> list[Path]:
    """`$KUBECONFIG` (several paths joined by `:`) or `~/.kube/config`."""
    env = os.environ if environ is None else environ
    listed = [Path(p).expanduser() for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    return listed or [Path("~/.kube/config").expanduser()]


def from_kubeconfig(context: str, paths: Sequence[Path]) -> ClusterConfig:
    """The cluster and user of `context`, from the merged kubeconfig files `paths`."""
    sections: dict[str, dict[str, tuple[Path, dict[str, Any]]]] = {
        "contexts": {}, "clusters": {}, "users": {}}
    for path in paths:
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            continue
        except (OSError, yaml.YAMLError) as exc:
            raise PermanentError(f"cannot read kubeconfig {path}: {exc}") from exc
        for section, entries in sections.items():
            for entry in loaded.get(section) or []:
                entries.setdefault(str(entry.get("name")), (path.parent, entry.get(section[:-1])
                                                            or {}))
    if context not in sections["contexts"]:
        known = ", ".join(sorted(sections["contexts"])) or "none"
        where = ", ".join(str(p) for p in paths)
        raise PermanentError(f"kubeconfig context `{context}` not found in {where} "
                             f"(contexts: {known})")
    _, ctx = sections["contexts"][context]
    base, cluster = _entry(sections["clusters"], ctx.get("cluster"), "cluster", context)
    user_base, user = _entry(sections["users"], ctx.get("user"), "user", context) if ctx.get(
        "user") else (base, {})
    if "exec" in user or "auth-provider" in user:
        raise PermanentError(f"kubeconfig user of context `{context}` logs in through an exec "
                             "plugin or auth provider, which Infrastream does not run; give it "
                             "a token, token file or client certificate")
    if not cluster.get("server"):
        raise PermanentError(f"kubeconfig cluster of context `{context}` has no server")
    return ClusterConfig(
        server=str(cluster["server"]).rstrip("/"),
        token=user.get("token"),
        token_file=_file(user_base, user.get("tokenFile")),
        ca_file=_file(base, cluster.get("certificate-authority")),
        ca_pem=_data(cluster.get("certificate-authority-data")),
        cert_file=_file(user_base, user.get("client-certificate")),
        key_file=_file(user_base, user.get("client-key")),
        cert_pem=_data(user.get("client-certificate-data")),
        key_pem=_data(user.get("client-key-data")),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)))


IN_CLUSTER = "in-cluster"


def resolve(context: str | None, environ: Mapping[str, str] | None = None) -> ClusterConfig:
    """A target's `context`, or the in-cluster account when it names none (or `in-cluster`)."""
    if context is None or context == IN_CLUSTER:
        return in_cluster(environ)
    return from_kubeconfig(context, kubeconfig_paths(environ))


def _entry(entries: dict[str, tuple[Path, dict[str, Any]]], name: Any, what: str,
           context: str) -> tuple[Path, dict[str, Any]]:
    if name not in entries:
        raise PermanentError(f"kubeconfig context `{context}` names {what} `{name}`, "
                             "which no kubeconfig declares")
    return entries[name]


def _file(base: Path, name: Any) -> Path | None:
    return None if not name else (base / Path(str(name)).expanduser())


def _data(encoded: Any) -> str | None:
    return None if not encoded else base64.b64decode(str(encoded)).decode()


def _load_pem_chain(context: ssl.SSLContext, cert: str, key: str | None) -> None:
    """`load_cert_chain` reads files only: hand it private ones, removed at once."""
    with tempfile.TemporaryDirectory(prefix="infrastream-tls-") as directory:
        cert_path = Path(directory) / "client.crt"
        cert_path.write_text(cert)
        key_path = None
        if key is not None:
            key_path = Path(directory) / "client.key"
            key_path.write_text(key)
        context.load_cert_chain(cert_path, key_path)
