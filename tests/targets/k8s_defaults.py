"""Defaulting for the Kubernetes API emulator: what a real API server fills in on write.

An object read back from a cluster is never exactly what was applied: the server adds
`strategy`, `revisionHistoryLimit`, `terminationMessagePath`, a Service's `clusterIP`,
a Secret's `type` and more. Code that compares "what I applied" with "what the server
holds" has to live with that, so the emulator does it too. The values are the documented
defaults of Kubernetes 1.30 for the fields the targets render; defaulted fields belong to
no field manager.
"""

from __future__ import annotations

from typing import Any

_PROBE = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
          "failureThreshold": 3}
_CONTAINER = {"terminationMessagePath": "/dev/termination-log",
              "terminationMessagePolicy": "File", "resources": {}}
_POD = {"restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst", "securityContext": {}, "schedulerName": "default-scheduler"}
_DEPLOYMENT = {"replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
               "strategy": {"type": "RollingUpdate",
                            "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}}


def default(kind: str, obj: dict[str, Any], cluster_ip: str) -> None:
    """Fill in what the API server defaults for `kind`, in place."""
    if kind == "Deployment":
        spec = obj.setdefault("spec", {})
        _fill(spec, _DEPLOYMENT)
        _pod(spec.setdefault("template", {}).setdefault("spec", {}))
    elif kind == "Service":
        spec = obj.setdefault("spec", {})
        _fill(spec, {"type": "ClusterIP", "sessionAffinity": "None",
                     "internalTrafficPolicy": "Cluster", "ipFamilyPolicy": "SingleStack",
                     "ipFamilies": ["IPv4"]})
        if spec["type"] != "ExternalName":
            spec.setdefault("clusterIP", cluster_ip)
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
        for port in spec.get("ports") or []:
            _fill(port, {"protocol": "TCP", "targetPort": port.get("port")})
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")


def _pod(spec: dict[str, Any]) -> None:
    _fill(spec, _POD)
    for container in spec.get("containers") or []:
        _fill(container, _CONTAINER)
        image = str(container.get("image", ""))
        tag = image.rsplit("/", 1)[-1]
        latest = "@" not in image and (":" not in tag or tag.endswith(":latest"))
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")
        for name in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe = container.get(name)
            if isinstance(probe, dict):
                _fill(probe, _PROBE)
                if "httpGet" in probe:
                    probe["httpGet"].setdefault("scheme", "HTTP")


def _fill(target: dict[str, Any], defaults: dict[str, Any]) -> None:
    for name, value in defaults.items():
        if name not in target:
            target[name] = _copy(value)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
