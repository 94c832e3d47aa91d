# A real single-node Kubernetes for CI, built from the Go module proxy
# (ci/cluster/README.md). Runs as root; everything it starts lives in the network
# namespace `tandem-cluster`, /var/lib/tandem-cluster and /run/tandem-cluster,
# and `make cluster-down` removes all of it. Not part of `make test`: CI runs
# `make e2e-k8s` after it (.ci/run).

CLUSTER_SCRIPTS := $(ROOT)/ci/cluster/scripts
CLUSTER_BIN     := /run/tandem-cluster/bin
# The admin kubeconfig of the running cluster (through the relay on 127.0.0.1).
CLUSTER_KUBECONFIG := /var/lib/tandem-cluster/kubeconfig
# Helm: the chart fragment's pinned build (HELM, HELM_VERSION in versions.mk).
CLUSTER_HELM    := $(HELM)
CLUSTER_HELM_STAMP := $(TOOLS_BIN)/.helm-$(HELM_VERSION)

# The release `make cluster-install` makes: the chart's default values plus
# what this 2-CPU node needs (ci/cluster/values-ci.yaml explains it).
CLUSTER_NAMESPACE ?= tandem
CLUSTER_RELEASE   ?= tandem
CLUSTER_CHART     ?= $(ROOT)/deploy/helm/tandem
CLUSTER_VALUES    ?= $(ROOT)/ci/cluster/values-ci.yaml
# Image archives `make image-archives` writes (docker save), imported as they are.
CLUSTER_IMAGE_ARCHIVES ?= $(wildcard $(ROOT)/.cache/images/*.tar)
# Extra pytest arguments for the Kubernetes suite, e.g. E2E_K8S_ARGS='-k drain'.
E2E_K8S_ARGS ?=

##@ CI cluster (root; ci/cluster/README.md)

.PHONY: cluster-deps
cluster-deps: ## Install the few Debian packages the cluster needs (iptables, libseccomp-dev, ...)
	@$(CLUSTER_SCRIPTS)/deps.sh

.PHONY: cluster-wrappers
cluster-wrappers: ## Regenerate the wrapper modules' go.mod/go.sum after bumping ci/cluster/versions.env
	$(CLUSTER_SCRIPTS)/gen-wrappers.sh

.PHONY: cluster-build
cluster-build: cluster-deps ## Build and cache Kubernetes, etcd, containerd, runc, CNI, CoreDNS, Helm, pause image
	@$(CLUSTER_SCRIPTS)/build.sh

.PHONY: cluster-up
cluster-up: cluster-build ## Start the single-node cluster (about a minute when cached)
	@$(CLUSTER_SCRIPTS)/up.sh

.PHONY: cluster-down
cluster-down: ## Stop the cluster and remove everything it created
	@$(CLUSTER_SCRIPTS)/down.sh

.PHONY: cluster-smoke
cluster-smoke: ## Check pod networking, Services and cluster DNS with a pod made FROM scratch
	@$(CLUSTER_SCRIPTS)/smoke.sh

.PHONY: cluster-status
cluster-status: ## Show the cluster's daemons, node and pods
	@$(CLUSTER_SCRIPTS)/status.sh

.PHONY: cluster-load-images
cluster-load-images: ## Import .cache/images/*.tar (make image-archives) into the cluster's containerd
	@$(CLUSTER_SCRIPTS)/load-images.sh $(CLUSTER_IMAGE_ARCHIVES)

.PHONY: cluster-install
cluster-install: $(CLUSTER_HELM_STAMP) ## helm upgrade --install --wait the chart into the cluster, then helm test (deploy/install.sh, as make deploy)
	KUBECONFIG=$(CLUSTER_KUBECONFIG) HELM=$(CLUSTER_HELM) KUBECTL=$(CLUSTER_BIN)/kubectl \
	  $(ROOT)/deploy/install.sh $(CLUSTER_RELEASE) $(CLUSTER_NAMESPACE) $(CLUSTER_CHART) $(foreach f,$(CLUSTER_VALUES),-f $(f))

.PHONY: cluster-test
cluster-test: install $(CLUSTER_HELM_STAMP) ## The Kubernetes e2e suite (tests/k8s) against the running cluster
	KUBECONFIG=$(CLUSTER_KUBECONFIG) PATH=$(CLUSTER_BIN):$$PATH $(VENV)/bin/pytest -q -rP tests/k8s \
	  --namespace $(CLUSTER_NAMESPACE) --release $(CLUSTER_RELEASE) --helm $(CLUSTER_HELM) \
	  --kubectl $(CLUSTER_BIN)/kubectl --no-restore --prometheus-image $(PROMETHEUS_IMAGE) $(E2E_K8S_ARGS)

.PHONY: e2e-k8s
e2e-k8s: ## CI's cluster stage: build, images, cluster up, install, tests/k8s, cluster down (also on failure)
	@$(CLUSTER_SCRIPTS)/e2e.sh
