"""End-to-end tests against the Helm release on a real Kubernetes cluster."""
