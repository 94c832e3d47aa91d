# Pictures in the docs: the benchmark charts (bench/charts.py) and the
# architecture diagram (docs/architecture.d2), both generated from sources in
# the repository and checked in, so GitHub shows them.
#
# Included by the root Makefile: uses its ROOT, VENV, PY and TOOLS_BIN, and
# appends its checks to TEST_TARGETS.

D2 := $(TOOLS_BIN)/d2
ARCHITECTURE_DIAGRAM := docs/architecture.svg

##@ Docs: charts and diagrams

TEST_TARGETS += test-bench diagrams-check
TEST_PREREQUISITES += $(TOOLS_BIN)/.d2-$(D2_VERSION)

# The benchmarks' own packages (matplotlib for the charts), on top of the
# core's environment.
$(VENV)/.bench-installed: bench/requirements.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -c python-inference/constraints.txt -r bench/requirements.txt
	@touch $@

.PHONY: bench-charts
bench-charts: $(VENV)/.bench-installed ## Draw the benchmark charts again from docs/benchmarks/*.json (no measuring)
	$(PY) bench/charts.py --results-dir docs/benchmarks

.PHONY: test-bench
test-bench: $(VENV)/.bench-installed ## Unit tests of the benchmarks' chart drawing and stage split
	$(VENV)/bin/pytest -q tests/bench

# Upstream stamps its release version into the binary (and d2 writes it into
# every SVG); a plain go install would say v0.7.1-HEAD. A cold build, module
# downloads included, took 86 s on 2 CPUs.
$(TOOLS_BIN)/.d2-$(D2_VERSION):
	GOBIN=$(TOOLS_BIN) CGO_ENABLED=0 go install -trimpath \
	  -ldflags "-s -w -X oss.terrastruct.com/d2/lib/version.Version=$(D2_VERSION)" \
	  oss.terrastruct.com/d2@$(D2_VERSION)
	@touch $@

.PHONY: diagrams
diagrams: $(TOOLS_BIN)/.d2-$(D2_VERSION) ## Render docs/architecture.svg from docs/architecture.d2
	$(D2) docs/architecture.d2 $(ARCHITECTURE_DIAGRAM)

# d2's output is deterministic (same layout, ids and embedded font subset on
# every run), so the check is a byte-for-byte comparison.
.PHONY: diagrams-check
diagrams-check: $(TOOLS_BIN)/.d2-$(D2_VERSION) ## Fail if docs/architecture.svg differs from what docs/architecture.d2 renders
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	$(D2) docs/architecture.d2 $$tmp/architecture.svg 2>$$tmp/log || { cat $$tmp/log >&2; exit 1; }; \
	cmp -s $(ARCHITECTURE_DIAGRAM) $$tmp/architecture.svg \
	  || { echo "stale $(ARCHITECTURE_DIAGRAM): run 'make diagrams'" >&2; exit 1; }; \
	echo "$(ARCHITECTURE_DIAGRAM) is up to date"
