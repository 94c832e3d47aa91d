# Every tool version the build installs, in one place. The Makefile installs
# each into .tools/ on first use (Go tools from the Go module proxy, Python
# packages from PyPI); bumping a version here re-installs it.

# Code generation. grpcio-tools (pinned in python-inference/constraints.txt)
# provides protoc itself, so Go and Python stubs come from one compiler.
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
BUF_VERSION                := v1.75.0

# Go linters.
STATICCHECK_VERSION        := v0.8.2

# Kubernetes (deploy/helm/chart.mk). helm renders and lints the chart,
# actionlint checks the GitHub workflow (both in make test); kind runs the
# quick-start cluster; buildx builds the images where the docker CLI has no
# BuildKit builder of its own.
HELM_VERSION               := v3.22.0
ACTIONLINT_VERSION         := v1.7.12
KIND_VERSION               := v0.33.0
BUILDX_VERSION             := v0.38.2

# Observability (observability/observability.mk). One Prometheus module gives
# promtool (checks and unit-tests the alert rules in make test) and the
# Prometheus server the e2e suites evaluate every dashboard query against.
PROMETHEUS_VERSION         := v0.316.0

# Docs (docs/docs.mk). d2 renders docs/architecture.svg from
# docs/architecture.d2; make test renders it again and compares.
D2_VERSION                 := v0.7.2
