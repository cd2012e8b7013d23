# exitpool — developer entry points.
#   make run    install build deps, build, start `exitpool serve` (extra flags: make run ARGS='--threads 2')
#   make check  install build + test deps, build, unit tests (ctest), integration tests (pytest)
#   make build  configure and build into ./build
#   make clean  remove ./build

BUILD_DIR  ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS       ?= 2
ARGS       ?=
# The Debian interpreter: it has python3-pytest, python3-requests and python3-socks
# (a python3 earlier on PATH, e.g. pyenv, may not).
PYTHON     ?= /usr/bin/python3
PYTEST_ARGS ?=

.PHONY: all deps test-deps build run check unit integration clean

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
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory integration

unit:
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS)

integration:
	EXITPOOL_BIN=$(abspath $(BUILD_DIR))/exitpool $(PYTHON) -m pytest -q tests/integration $(PYTEST_ARGS)

clean:
	rm -rf $(BUILD_DIR)
