"""A real Kubernetes 1.35 control plane on loopback, with kwok standing in for the kubelets.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler are the real programs, built from
the Go module proxy (``python -m lfharness.testing.cluster build``; ``LFK8S_KUBE=1 bash setup.sh``).
kwok (a kubelet simulator) plays two nodes shaped like 01-network's t3.medium nodes: it moves pods
through the stages in ``stages/`` (no container ever runs) and answers the kubelet API for logs and
port-forwards. What is a stand-in here, by name:

- the kubelets and containers: kwok and its stages (pods become Ready without running anything);
- the EBS CSI driver: ``standins.PvStandIn``, a loop that binds a PV to each claim of the default class;
- what a port-forward reaches: local programs on loopback (``kwok.Forwards``), not a container;
- the EKS addon pods: placeholder images with the real addons' requests (they never run).

The rooms, in the order a cluster comes up (each module imports only rooms above it):

- ``binaries``: the Go builds of the five programs, their cache and the tier's skip line;
- ``nodes``: the two nodes, the EKS addon pods and the default StorageClass, as manifests;
- ``kwok``: kwok's configuration: the stages (YAML files under ``stages/``), logs, port-forwards;
- ``certs``: the throwaway credentials (CA from ``localca``, service-account key, admin token);
- ``standins``: what runs in place of cluster parts: the EBS CSI driver, ClickHouse's /ping;
- ``controlplane``: ``LocalCluster``, the processes started, watched and stopped by PID;
- ``localkube``: ``LocalKube``, the cluster with the port-forward stand-ins the tests reach;
- ``helm``: 03-app's planned release, the project's helm against the cluster, namespace helpers.

One ``LocalKube`` per pytest session: fresh etcd in a temporary folder, free loopback ports,
throwaway CA, service-account key and admin token, every process stopped by its PID on exit.
"""
