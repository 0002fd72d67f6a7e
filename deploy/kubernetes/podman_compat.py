#!/usr/bin/env python3
"""Prints the Kubernetes YAML files given, changed only as Podman 4.3 needs to run them.

Usage: podman_compat.py FILE... > for-podman.yaml; podman kube play for-podman.yaml

Podman 4.3 (Debian 12) predates native sidecars: it runs every init container to completion
before the app containers, and refuses an init container with probes ("cannot create an init
container that has either of lifecycle, livenessProbe, readinessProbe, or startupProbe set"). So
each init container with `restartPolicy: Always` becomes the first regular container of its pod,
without the `restartPolicy` and `startupProbe` fields that regular containers do not take.
Everything else passes through unchanged; a document that is not a Pod template passes whole.
"""
import sys

import yaml


def pod_spec(document):
    kind = document.get("kind")
    if kind == "Pod":
        return document.get("spec")
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return document.get("spec", {}).get("template", {}).get("spec")
    return None


def move_native_sidecars(spec):
    """Moves native sidecars (init containers with restartPolicy: Always) into the containers."""
    init_containers = spec.get("initContainers") or []
    sidecars = [c for c in init_containers if c.get("restartPolicy") == "Always"]
    if not sidecars:
        return
    for sidecar in sidecars:
        del sidecar["restartPolicy"]
        sidecar.pop("startupProbe", None)
    remaining = [c for c in init_containers if c not in sidecars]
    if remaining:
        spec["initContainers"] = remaining
    else:
        del spec["initContainers"]
    spec["containers"] = sidecars + (spec.get("containers") or [])


def main(paths):
    documents = []
    for path in paths:
        with open(path) as file:
            documents += [d for d in yaml.safe_load_all(file) if d]
    for document in documents:
        spec = pod_spec(document)
        if spec is not None:
            move_native_sidecars(spec)
    yaml.safe_dump_all(documents, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
