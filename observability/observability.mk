# Observability: the Grafana dashboard, the SLO alert rules and the Prometheus
# that proves them (docs/observability.md).
#
# Included by the root Makefile: uses its ROOT, VENV, PY, TOOLS_BIN, and
# appends its checks to TEST_TARGETS.

PROMETHEUS := $(TOOLS_BIN)/prometheus
PROMTOOL   := $(TOOLS_BIN)/promtool

##@ Observability

# Service discovery: Kubernetes only (the CI cluster's Prometheus discovers
# the pods); remove_all_sd leaves out every cloud provider's SDK, which would
# double the build. The web UI's assets are not embedded (no builtinassets
# tag): the HTTP API, which is what the tests and `make run OBSERVE=1` use,
# is complete without them.
PROMETHEUS_TAGS := remove_all_sd,enable_kubernetes_sd
# The module's v0.3MM.P is Prometheus 3.MM.P (upstream's numbering for Go).
PROMETHEUS_RELEASE := $(shell echo $(PROMETHEUS_VERSION) | sed -E 's/^v0\.3([0-9][0-9])\.(.*)$$/3.\1.\2/')

.PHONY: prometheus-tools
prometheus-tools: $(TOOLS_BIN)/.prometheus-$(PROMETHEUS_VERSION) ## Build prometheus and promtool (pinned) into .tools/bin

$(TOOLS_BIN)/.prometheus-$(PROMETHEUS_VERSION):
	GOBIN=$(TOOLS_BIN) CGO_ENABLED=0 go install -trimpath -tags $(PROMETHEUS_TAGS) \
	  -ldflags "-s -w -X github.com/prometheus/common/version.Version=$(PROMETHEUS_RELEASE)" \
	  github.com/prometheus/prometheus/cmd/prometheus@$(PROMETHEUS_VERSION) \
	  github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS_VERSION)
	@touch $@
