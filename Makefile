# Thin wrapper over CMake. See README.md.
BUILD ?= build
JOBS ?= $(shell nproc)
DATA_DIR ?= ./pstorage-flash-demo

.PHONY: run flash-demo test bench deps build build-release deb clean

deps:
	@bash scripts/install-deps.sh

build-release: deps
	cmake -S . -B $(BUILD)/release -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD)/release -j $(JOBS)

build: deps
	cmake -S . -B $(BUILD)/debug -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD)/debug -j $(JOBS)

# Starts the service with ./config.json, created with safe defaults on the
# first run (port 8000 on 127.0.0.1, data in ./pstorage-data/; the admin API
# key is printed once). Ctrl-C stops it cleanly.
CONFIG ?= ./config.json
run: build-release
	$(BUILD)/release/api/pstorage serve --config $(CONFIG)

# The Debian package, $(BUILD)/deb/pstorage_<version>_<arch>.deb: a Release
# build configured for /usr (config in /etc/pstorage), then cpack. See
# docs/operations.md, "Install and run as a service". Builds the binary and
# the man page only (no tests: cpack would otherwise build `all` first).
deb: deps
	cmake -S . -B $(BUILD)/deb -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
	  -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON >/dev/null
	cmake --build $(BUILD)/deb -j $(JOBS) --target pstorage pstorage-man
	cd $(BUILD)/deb && cpack -G DEB

# The flash device alone: a random-overwrite workload with recovery checks.
flash-demo: build-release
	$(BUILD)/release/flash_sim/pstorage-flash --data-dir $(DATA_DIR)

test: build
	cd $(BUILD)/debug && ctest --output-on-failure -j $(JOBS)

# Benchmarks (about six minutes): regenerates docs/performance.md with
# bench/report.sh, installing fio, nbdkit, redis, etcd, jq and zstd if missing.
bench: build-release
	bash bench/report.sh $(BUILD)/release

# libFuzzer on the REST handlers (clang-14, libclang-rt-14-dev): FUZZ_SECONDS
# of fuzzing on a copy of fuzz/corpus/api; crashes land in
# $(BUILD)/fuzz/artifacts/. See fuzz/api_fuzz.cc for the input encoding.
FUZZ_SECONDS ?= 300
fuzz: deps
	CC=clang-14 CXX=clang++-14 cmake -S . -B $(BUILD)/fuzz -DPSTORAGE_FUZZ=ON \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD)/fuzz -j $(JOBS) --target pstorage-api-fuzz
	rm -rf $(BUILD)/fuzz/corpus && mkdir -p $(BUILD)/fuzz/corpus $(BUILD)/fuzz/artifacts
	cp fuzz/corpus/api/* $(BUILD)/fuzz/corpus/
	$(BUILD)/fuzz/fuzz/pstorage-api-fuzz $(BUILD)/fuzz/corpus \
	  -artifact_prefix=$(BUILD)/fuzz/artifacts/ -max_total_time=$(FUZZ_SECONDS) \
	  -max_len=65536 -rss_limit_mb=4096 -timeout=25 -dict=fuzz/api.dict -print_final_stats=1

clean:
	rm -rf $(BUILD)
