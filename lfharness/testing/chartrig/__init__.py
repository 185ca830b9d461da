"""The chart tier's rig: the pinned Langfuse chart found, rendered and read, in four rooms.

- ``source``: which chart (the pin in terraform/03-app/helm.tf), where it comes from
  (``LFK8S_CHART_DIR``, the project cache, else ``helm pull`` when the repository answers) and
  the checks an unpacked chart passes (name, version, dependencies under ``charts/``);
- ``render``: the Helm values (merged as helm merges ``-f`` files, written as 0600 files, the
  Secrets they reference) and ``helm template`` of them, checkov over the result;
- ``query``: reading the rendered objects: workloads, containers and their environment,
  Secrets and ConfigMaps, services, PSA baseline;
- ``fit``: Kubernetes quantities and the arithmetic of requests against the nodes' capacity,
  and the volumes the release claims.

Each room imports only rooms listed above it. Nothing fetched is ever written into the repository
(decision 16). The README's kubectl commands are read by lfharness/testing/docs_kubectl.py.
"""
