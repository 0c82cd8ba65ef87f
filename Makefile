# Archway: `make run` starts the mirror on its embedded default, `make test` runs every test.
# Both install the Debian packages they need when they are missing.

SWIFT ?= swift
APT_GET := $(shell command -v apt-get 2>/dev/null)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

BUILD_PACKAGES := libcurl4-openssl-dev libsqlite3-dev
TEST_PACKAGES := docker-registry skopeo containerd podman docker.io systemd openssl curl python3-venv

.PHONY: run build test format lint deps test-deps clean

# Installs the listed Debian packages that are not installed yet.
define ensure_packages
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call ensure_packages,$(BUILD_PACKAGES))

test-deps: deps
	$(call ensure_packages,$(TEST_PACKAGES))

build: deps
	$(SWIFT) build

run: deps
	$(SWIFT) run archway serve $(ARGS)

test: test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

format:
	swift-format format --in-place --parallel --recursive Package.swift Sources Tests

lint:
	swift-format lint --strict --parallel --recursive Package.swift Sources Tests

clean:
	rm -rf .build
