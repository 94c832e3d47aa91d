#!/usr/bin/env bash
# Generate the Go and Python stubs from proto/ into the tree rooted at $1
# (default: the repository). `make proto` writes them in place; `make
# proto-check` writes them to a temporary tree and diffs, so stale checked-in
# stubs fail the tests.
#
# Needs: $PYTHON with grpcio-tools (provides protoc), and protoc-gen-go /
# protoc-gen-go-grpc on PATH at the versions pinned in versions.mk.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo}
python=${PYTHON:-$repo/.venv/bin/python}
go_module=github.com/tandem-inference/tandem/go-gateway

mapfile -t protos < <(cd "$repo/proto" && find . -name '*.proto' | sed 's|^\./||' | sort)

mkdir -p "$out/go-gateway" "$out/python-inference/src"
cd "$repo/proto"
"$python" -m grpc_tools.protoc \
  -I . \
  --go_out="$out/go-gateway" --go_opt=module="$go_module" \
  --go-grpc_out="$out/go-gateway" --go-grpc_opt=module="$go_module" \
  --python_out="$out/python-inference/src" \
  --pyi_out="$out/python-inference/src" \
  --grpc_python_out="$out/python-inference/src" \
  "${protos[@]}"
