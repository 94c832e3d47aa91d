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
