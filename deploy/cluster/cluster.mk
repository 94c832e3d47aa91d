# A real single-node Kubernetes for CI, built from source (see deploy/cluster/README.md).
