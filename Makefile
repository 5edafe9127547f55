# Thin wrapper over CMake. See README.md.
BUILD ?= build
JOBS ?= $(shell nproc)
DATA_DIR ?= ./pstorage-data

.PHONY: run test bench deps build build-release clean

deps:
	@bash scripts/install-deps.sh

build-release: deps
	cmake -S . -B $(BUILD)/release -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD)/release -j $(JOBS)

build: deps
	cmake -S . -B $(BUILD)/debug -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD)/debug -j $(JOBS)

# Until the server exists, `make run` drives the simulated flash device.
run: build-release
	$(BUILD)/release/flash_sim/pstorage-flash --data-dir $(DATA_DIR)

test: build
	cd $(BUILD)/debug && ctest --output-on-failure -j $(JOBS)

# Benchmarks (minutes): regenerates docs/performance.md.
bench: build-release
	bash scripts/bench-report.sh $(BUILD)/release

clean:
	rm -rf $(BUILD)
