"""The Pod Security Standards' `restricted` profile, as checks over a Pod spec.

Written from the Kubernetes documentation page "Pod Security Standards": `restricted` is
every `baseline` control plus its own. Each check returns what it found wrong, so a test
can print every violation of a Pod at once. Containers means `containers`,
`initContainers` and `ephemeralContainers` alike, as the page says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

Spec = dict[str, Any]

BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
                         "MKNOD", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID",
                         "SYS_CHROOT"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t",
                 "container_engine_t"}
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}


def containers(spec: Spec) -> Iterator[Spec]:
    for field in ("containers", "initContainers", "ephemeralContainers"):
        yield from spec.get(field) or []


def _context(container: Spec) -> Spec:
    context: Spec = container.get("securityContext") or {}
    return context


def host_namespaces(spec: Spec) -> list[str]:
    return [f"spec.{f} is true" for f in ("hostNetwork", "hostPID", "hostIPC") if spec.get(f)]


def privileged(spec: Spec) -> list[str]:
    return [f"{c['name']}: privileged" for c in containers(spec)
            if _context(c).get("privileged")]


def host_process(spec: Spec) -> list[str]:
    contexts = [spec.get("securityContext") or {}, *map(_context, containers(spec))]
    return ["windowsOptions.hostProcess is true" for s in contexts
            if (s.get("windowsOptions") or {}).get("hostProcess")]


def host_paths(spec: Spec) -> list[str]:
    return [f"volume {v['name']} is a hostPath" for v in spec.get("volumes") or []
            if "hostPath" in v]


def host_ports(spec: Spec) -> list[str]:
    return [f"{c['name']}: hostPort {p['hostPort']}" for c in containers(spec)
            for p in c.get("ports") or [] if p.get("hostPort")]


def app_armor(spec: Spec) -> list[str]:
    contexts = [spec.get("securityContext") or {}, *map(_context, containers(spec))]
    return [f"AppArmor profile {s['appArmorProfile']['type']}" for s in contexts
            if "appArmorProfile" in s
            and s["appArmorProfile"].get("type") not in ("RuntimeDefault", "Localhost")]


def se_linux(spec: Spec) -> list[str]:
    contexts = [spec.get("securityContext") or {}, *map(_context, containers(spec))]
    found = []
    for s in contexts:
        options = s.get("seLinuxOptions") or {}
        if options.get("type", "") not in SELINUX_TYPES or "user" in options or (
                "role" in options):
            found.append(f"seLinuxOptions {options}")
    return found


def proc_mount(spec: Spec) -> list[str]:
    return [f"{c['name']}: procMount {_context(c)['procMount']}" for c in containers(spec)
            if _context(c).get("procMount", "Default") != "Default"]


def sysctls(spec: Spec) -> list[str]:
    return [f"sysctl {s['name']}" for s in (spec.get("securityContext") or {}).get(
        "sysctls") or [] if s["name"] not in SAFE_SYSCTLS]


def baseline_capabilities(spec: Spec) -> list[str]:
    return [f"{c['name']}: adds {cap}" for c in containers(spec)
            for cap in (_context(c).get("capabilities") or {}).get("add") or []
            if cap not in BASELINE_CAPABILITIES]


def volume_types(spec: Spec) -> list[str]:
    return [f"volume {v['name']} has type {kind}" for v in spec.get("volumes") or []
            for kind in v if kind != "name" and kind not in RESTRICTED_VOLUMES]


def privilege_escalation(spec: Spec) -> list[str]:
    return [f"{c['name']}: allowPrivilegeEscalation is not false" for c in containers(spec)
            if _context(c).get("allowPrivilegeEscalation") is not False]


def non_root(spec: Spec) -> list[str]:
    pod = (spec.get("securityContext") or {}).get("runAsNonRoot")
    return [f"{c['name']}: runAsNonRoot is not true" for c in containers(spec)
            if _context(c).get("runAsNonRoot", pod) is not True]


def non_root_user(spec: Spec) -> list[str]:
    contexts = [spec.get("securityContext") or {}, *map(_context, containers(spec))]
    return ["runAsUser is 0" for s in contexts if s.get("runAsUser") == 0]


def seccomp(spec: Spec) -> list[str]:
    pod = ((spec.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
    found = []
    for c in containers(spec):
        kind = (_context(c).get("seccompProfile") or {}).get("type", pod)
        if kind not in ("RuntimeDefault", "Localhost"):
            found.append(f"{c['name']}: seccomp profile {kind}")
    return found


def restricted_capabilities(spec: Spec) -> list[str]:
    found = []
    for c in containers(spec):
        capabilities = _context(c).get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"{c['name']}: does not drop ALL capabilities")
        found += [f"{c['name']}: adds {cap}" for cap in capabilities.get("add") or []
                  if cap != "NET_BIND_SERVICE"]
    return found


BASELINE: tuple[Callable[[Spec], list[str]], ...] = (
    host_process, host_namespaces, privileged, baseline_capabilities, host_paths, host_ports,
    app_armor, se_linux, proc_mount, sysctls)
RESTRICTED: tuple[Callable[[Spec], list[str]], ...] = (
    *BASELINE, volume_types, privilege_escalation, non_root, non_root_user, seccomp,
    restricted_capabilities)


def restricted_violations(pod_spec: Spec) -> list[str]:
    """Every way `pod_spec` breaks the `restricted` profile (empty: it is admitted)."""
    return [problem for check in RESTRICTED for problem in check(pod_spec)]
