"""Reading the rendered Kubernetes objects: by kind and name, workloads and their pod specs and
containers, the environment a container starts with (env, envFrom, references resolved against
the rendered and 03-app's Secrets and ConfigMaps), the DATABASE_URL Langfuse builds from it,
literal secrets in env, services' ports, PVC templates, and what Pod Security Admission's
baseline would refuse. Pure functions of the objects: no file, no process.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")

# PSA baseline (Kubernetes Pod Security Standards): the capabilities a container may add.
BASELINE_CAPABILITIES = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                                   "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})


# --- objects by kind and name, workloads and their containers -------------------------------

def strings_in(node: Any) -> list[str]:
    """Every string (keys and values) inside an object, unescaped, e.g. to look for a leaked secret."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in [str(k), *strings_in(v)]]
    if isinstance(node, list):
        return [s for v in node for s in strings_in(v)]
    return [node] if isinstance(node, str) else []


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [obj for obj in objects if obj.get("kind") == kind]


def get(objects: list[dict], kind: str, name: str) -> dict:
    """One object by kind and name, or a KeyError listing what there is."""
    for obj in of_kind(objects, kind):
        if obj["metadata"]["name"] == name:
            return obj
    names = sorted(obj["metadata"]["name"] for obj in of_kind(objects, kind))
    raise KeyError(f"no {kind} named {name!r}; rendered {kind}s: {names}")


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def replicas(workload: dict) -> int:
    # An absent replicas field means 1 for Deployments and StatefulSets.
    return int(workload["spec"].get("replicas", 1))


def workloads(objects: list[dict]) -> list[dict]:
    return [obj for obj in objects if obj.get("kind") in WORKLOAD_KINDS]


def containers(objects: list[dict]) -> dict[str, dict]:
    """Every container (init containers included) of every workload, by Kind/name/container."""
    found = {}
    for workload in workloads(objects):
        spec = pod_spec(workload)
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            found[f"{workload['kind']}/{workload['metadata']['name']}/{c['name']}"] = c
    return found


def service_ports(objects: list[dict], name: str) -> list[int]:
    return [int(p["port"]) for p in get(objects, "Service", name)["spec"].get("ports") or []]


def pvc_templates(objects: list[dict]) -> dict[str, list[dict]]:
    """volumeClaimTemplates of every StatefulSet, by StatefulSet name."""
    return {s["metadata"]["name"]: list(s["spec"].get("volumeClaimTemplates") or [])
            for s in of_kind(objects, "StatefulSet")}


# --- the environment a container starts with ------------------------------------------------

def secret_data(objects: list[dict]) -> dict[str, dict[str, str]]:
    """Decoded data and stringData of every rendered Secret, by name."""
    found: dict[str, dict[str, str]] = {}
    for secret in of_kind(objects, "Secret"):
        data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
        data.update({k: str(v) for k, v in (secret.get("stringData") or {}).items()})
        found[secret["metadata"]["name"]] = data
    return found


def _configmap_data(objects: list[dict]) -> dict[str, dict[str, str]]:
    return {cm["metadata"]["name"]: {k: str(v) for k, v in (cm.get("data") or {}).items()}
            for cm in of_kind(objects, "ConfigMap")}


def _expand(value: str, env: Mapping[str, str | None]) -> str:
    # Kubernetes expands $(VAR) from variables defined earlier; $$ escapes a literal $.
    def sub(match: re.Match[str]) -> str:
        if match.group(0).startswith("$$"):
            return match.group(0)[1:]
        resolved = env.get(match.group(1))
        return resolved if resolved is not None else match.group(0)

    return re.sub(r"\$\$\([A-Za-z_][A-Za-z0-9_]*\)|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, value)


def container_env(objects: list[dict], kind: str, name: str, container: str | None = None,
                  external: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, str | None]:
    """The environment a container of a rendered workload starts with.

    envFrom first, then env in order (a later entry wins); `value` with $(VAR) expanded;
    secretKeyRef / configMapKeyRef resolved from the rendered Secrets and ConfigMaps, and from
    `external` Secrets (name -> data) that exist beside the release, such as 03-app's (None when
    the referenced object is nowhere, and for fieldRef / resourceFieldRef).
    """
    spec = pod_spec(get(objects, kind, name))
    containers = spec.get("containers") or []
    chosen = next((c for c in containers if c["name"] == (container or name)), None)
    if chosen is None:
        if container is not None or len(containers) != 1:
            raise KeyError(f"{kind}/{name} has containers {[c['name'] for c in containers]}, "
                           f"none named {container or name!r}")
        chosen = containers[0]
    secrets, configmaps = {**(external or {}), **secret_data(objects)}, _configmap_data(objects)
    env: dict[str, str | None] = {}
    for source in chosen.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "secretRef" in source:
            data = secrets.get(source["secretRef"]["name"], {})
        else:
            data = configmaps.get(source.get("configMapRef", {}).get("name"), {})
        env.update({prefix + k: v for k, v in data.items()})
    for entry in chosen.get("env") or []:
        ref = entry.get("valueFrom")
        if ref is None:
            env[entry["name"]] = _expand(str(entry.get("value", "")), env)
        elif "secretKeyRef" in ref:
            env[entry["name"]] = secrets.get(ref["secretKeyRef"]["name"], {}).get(ref["secretKeyRef"]["key"])
        elif "configMapKeyRef" in ref:
            env[entry["name"]] = configmaps.get(ref["configMapKeyRef"]["name"], {}).get(ref["configMapKeyRef"]["key"])
        else:
            env[entry["name"]] = None
    return env


def env_names(objects: list[dict]) -> dict[str, list[str]]:
    """Every env and envFrom-secret key name of every container (incl. init), by container path."""
    secrets = secret_data(objects)
    found: dict[str, list[str]] = {}
    for workload in workloads(objects):
        spec = pod_spec(workload)
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            names = [e["name"] for e in c.get("env") or []]
            for source in c.get("envFrom") or []:
                if "secretRef" in source:
                    names += [source.get("prefix", "") + k for k in secrets.get(source["secretRef"]["name"], {})]
            found[f"{workload['kind']}/{workload['metadata']['name']}/{c['name']}"] = names
    return found


def database_url(env: Mapping[str, str | None]) -> str | None:
    """The DATABASE_URL Langfuse ends up with: its own, else the one the image's entrypoint
    builds from DATABASE_HOST/_USERNAME/_PASSWORD/_NAME plus `?DATABASE_ARGS` (web/entrypoint.sh
    and worker/entrypoint.sh at 3.150; DATABASE_PORT is never read, so the port is Postgres'
    default unless DATABASE_HOST carries one)."""
    if env.get("DATABASE_URL"):
        return env["DATABASE_URL"]
    parts = [env.get(k) for k in ("DATABASE_HOST", "DATABASE_USERNAME", "DATABASE_PASSWORD", "DATABASE_NAME")]
    if not all(parts):
        return None
    host, user, password, name = parts
    url = f"postgresql://{user}:{password}@{host}/{name}"
    return f"{url}?{env['DATABASE_ARGS']}" if env.get("DATABASE_ARGS") else url


# --- secrets by reference, Pod Security baseline (decision 20) ------------------------------

def secret_key_refs(container: dict) -> dict[str, tuple[str, str]]:
    """env name -> (Secret, key) of a container's env entries that come from a secretKeyRef."""
    return {e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
            for e in container.get("env") or [] if "secretKeyRef" in (e.get("valueFrom") or {})}


def literal_env_leaks(objects: list[dict], secrets: Mapping[str, str]) -> list[str]:
    """`container path: ENV (label)` for every env entry whose literal `value` holds a secret."""
    return [f"{path}: {entry['name']} ({label})"
            for path, c in containers(objects).items() for entry in c.get("env") or []
            for label, secret in secrets.items()
            if secret and "value" in entry and secret in str(entry["value"])]


def baseline_violations(objects: list[dict]) -> list[str]:
    """What Pod Security Admission `enforce: baseline` would refuse in the rendered workloads:
    host namespaces, hostPath volumes, host ports, privileged containers, added capabilities
    outside the baseline set, an Unconfined seccomp profile, a non-default procMount."""
    found = []
    for workload in workloads(objects):
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        spec = pod_spec(workload)
        found += [f"{where}: {k}" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
        found += [f"{where}: hostPath volume {v['name']}" for v in spec.get("volumes") or [] if "hostPath" in v]
        if ((spec.get("securityContext") or {}).get("seccompProfile") or {}).get("type") == "Unconfined":
            found.append(f"{where}: seccomp Unconfined")
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            ctx = c.get("securityContext") or {}
            path = f"{where}/{c['name']}"
            found += [f"{path}: hostPort {p['hostPort']}" for p in c.get("ports") or [] if p.get("hostPort")]
            if ctx.get("privileged"):
                found.append(f"{path}: privileged")
            added = set((ctx.get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES
            if added:
                found.append(f"{path}: adds capabilities {sorted(added)}")
            if (ctx.get("seccompProfile") or {}).get("type") == "Unconfined":
                found.append(f"{path}: seccomp Unconfined")
            if ctx.get("procMount", "Default") != "Default":
                found.append(f"{path}: procMount {ctx['procMount']}")
    return found
