# Archway: `make run` starts the mirror on its embedded default, `make test` runs every test.
# Both install the Debian packages they need when they are missing.

SWIFT ?= swift
APT_GET := $(shell command -v apt-get 2>/dev/null)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

BUILD_PACKAGES := libcurl4-openssl-dev libsqlite3-dev zlib1g-dev libzstd-dev
TEST_PACKAGES := docker-registry skopeo containerd podman docker.io systemd openssl curl python3-venv radosgw ceph-mon ceph-osd postgresql-15 nginx tmux chromium chromium-driver

.PHONY: run build test format lint deps test-deps clean fuzz soak bench cluster demo

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

# Three replicas on Ceph (radosgw) and PostgreSQL behind nginx, with a seeded local upstream,
# all on loopback until Ctrl-C: the scale-out product on one machine.
cluster: test-deps
	$(SWIFT) build --product archway
	$(SWIFT) build --product archway-cluster
	.build/debug/archway-cluster

# The whole product in two minutes, offline: a local upstream, Archway with a policy, pulls, the
# report, the operator's page. Ctrl-C stops it.
demo: deps
	$(call ensure_packages,docker-registry skopeo)
	$(SWIFT) build --product archway
	$(SWIFT) build --product archway-cluster
	.build/debug/archway-cluster demo

test: test-deps
	python3 scripts/check_imports.py
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

format:
	swift-format format --in-place --parallel --recursive Package.swift Sources Tests

lint:
	swift-format lint --strict --parallel --recursive Package.swift Sources Tests
	python3 scripts/check_imports.py

# libFuzzer targets (parsers of paths, references, policies, manifests, ranges, upstream answers), FUZZ_SECONDS each.
# The fuzzers start libFuzzer themselves (SwiftPM renames executables' entry points), linked with
# the toolchain's libFuzzer runtime without main.
FUZZ_RUNTIME = $(firstword $(wildcard $(dir $(shell readlink -f $(shell command -v swift)))../lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a))
# The seeds in Fuzz/corpus stay as they are; what a run discovers goes to .build-fuzz/corpus.
FUZZ_TARGETS := FuzzReference FuzzPolicy FuzzManifest FuzzRange FuzzUpstreamAnswers FuzzLayer
FUZZ_SECONDS ?= 60
fuzz: deps
	@for target in $(FUZZ_TARGETS); do \
		ARCHWAY_FUZZ=1 ARCHWAY_FUZZ_RUNTIME=$(FUZZ_RUNTIME) $(SWIFT) build -c release --scratch-path .build-fuzz --product $$target || exit 1; \
	done
	@mkdir -p .build-fuzz/crashes
	@for target in $(FUZZ_TARGETS); do \
		mkdir -p .build-fuzz/corpus/$$target; \
		echo "== $$target for $(FUZZ_SECONDS)s"; \
		.build-fuzz/release/$$target .build-fuzz/corpus/$$target Fuzz/corpus/$$target \
			-max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 -print_final_stats=1 \
			-artifact_prefix=.build-fuzz/crashes/$$target- || exit 1; \
	done

# 200 concurrent clients for SOAK_SECONDS against a release build; prints the numbers.
SOAK_SECONDS ?= 300
soak: deps
	$(call ensure_packages,docker-registry skopeo wrk)
	$(SWIFT) build -c release --product archway
	python3 scripts/soak.py --seconds $(SOAK_SECONDS) --clients 200

# Archway against its peers (distribution's proxy, nginx proxy_cache, nginx static sendfile),
# all started side by side on loopback; prints ratios, writes .build/bench/*.json and a PNG. Then
# the cluster section: three replicas on radosgw and PostgreSQL against distribution's proxy with
# three replicas on the same radosgw (.build/bench/cluster.json).
# BENCH_ARGS=--quick for one short run.
BENCH_ARGS ?=
bench: deps
	$(call ensure_packages,docker-registry skopeo wrk nginx gnuplot-nox curl radosgw ceph-mon ceph-osd postgresql-15 openssl nghttp2-client containerd)
	$(SWIFT) build -c release --product archway
	python3 scripts/bench.py $(BENCH_ARGS)
	$(SWIFT) build -c release --product archway-cluster
	ARCHWAY_BINARY=$(CURDIR)/.build/release/archway .build/release/archway-cluster bench

clean:
	rm -rf .build .build-fuzz
