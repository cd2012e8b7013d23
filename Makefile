# exitpool — developer entry points.
#   make run    install build deps, build, start `exitpool serve` (extra flags: make run ARGS='--threads 2')
#   make check  install build + test deps, build, lint, unit tests (ctest), fuzzing, integration tests (pytest)
#   make lint   clang-format check of every C++ file, clang-tidy on src/proto and src/pool (scripts/lint.sh,
#               ~30 s; LINT_ALL=1 tidies every source, ~10 min); configures ./build first if needed
#   make format clang-format -i every C++ file (src/, tests/, bench/) with .clang-format
#   make fuzz   build the libFuzzer targets (clang, ./build-fuzz) and run each for FUZZ_SECONDS
#   make check-asan  the unit and integration tests under ASan+UBSan+LSan (g++, ./build-asan)
#   make build  configure and build into ./build
#   make deb    the Debian package (CPack: binary, systemd unit, /etc/exitpool config, man pages, completion)
#               into ./build/exitpool_VERSION_ARCH.deb; never part of `make build` or `make run`
#   make clean  remove ./build
#   make bench  gateway benchmark against squid, tinyproxy, privoxy, dante, microsocks (bench/gateway/run.sh,
#               ~13 min; QUICK=1 ~3 min); builds Release into ./build-bench. Never part of `make check`.

BUILD_DIR  ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS       ?= 2
ARGS       ?=
# The Debian interpreter: it has python3-pytest, python3-requests and python3-socks
# (a python3 earlier on PATH, e.g. pyenv, may not).
PYTHON     ?= /usr/bin/python3
PYTEST_ARGS ?=
# Per fuzz target; nine targets at 20 s keep `make check`'s fuzzing near 3 minutes.
FUZZ_SECONDS ?= 20

.PHONY: all deps test-deps build run check lint format unit integration fuzz check-asan clean bench deb

all: build

deps:
	scripts/install-deps.sh

test-deps:
	scripts/install-deps.sh --test

build:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	cmake --build $(BUILD_DIR) -j$(JOBS)

# Each step runs after the one before, also under `make -j`.
run:
	scripts/install-deps.sh
	$(MAKE) --no-print-directory build
	./$(BUILD_DIR)/exitpool serve $(ARGS)

check:
	scripts/install-deps.sh --test
	$(MAKE) --no-print-directory build
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory fuzz
	$(MAKE) --no-print-directory integration

unit:
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS)

integration:
	EXITPOOL_BIN=$(abspath $(BUILD_DIR))/exitpool $(PYTHON) -m pytest -q tests/integration $(PYTEST_ARGS)

# clang-tidy reads $(BUILD_DIR)/compile_commands.json, which configuring writes (no build needed).
lint:
	test -f $(BUILD_DIR)/compile_commands.json || cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	BUILD_DIR=$(BUILD_DIR) JOBS=$(JOBS) scripts/lint.sh

format:
	scripts/lint.sh --fix

fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

check-asan:
	scripts/install-deps.sh --test
	JOBS=$(JOBS) PYTHON=$(PYTHON) scripts/check-asan.sh $(PYTEST_ARGS)

deb:
	scripts/install-deps.sh
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	cmake --build $(BUILD_DIR) -j$(JOBS) --target deb

clean:
	rm -rf $(BUILD_DIR)

bench:
	scripts/install-deps.sh --bench
	bench/gateway/run.sh
