# The two commands the README names, `make demo` and `make test`, do all
# set-up themselves on a fresh Debian 12 machine (as root): install missing
# packages, configure, build, run.
#
# Variables:
#   BUILD_DIR     build tree                              (default: build)
#   BUILD_TYPE    CMake build type                        (default: RelWithDebInfo)
#   CMAKE_FLAGS   extra flags for the CMake configure step, e.g.
#                 CMAKE_FLAGS="-DCMAKE_CXX_COMPILER=clang++-19 -DSLUICE_SANITIZE=address,undefined"
#   TARGETS       targets to build                        (default: all)
#   CTEST_FLAGS   extra flags for ctest, e.g. CTEST_FLAGS="-L runtime"
#   JOBS          parallel build and test jobs            (default: number of cores)

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
CMAKE_FLAGS ?=
TARGETS ?= all
CTEST_FLAGS ?=
JOBS ?= $(shell nproc)
CCACHE := $(shell command -v ccache 2>/dev/null)

.PHONY: all setup configure build test demo bench clean

all: build

setup:
	@bash scripts/setup.sh

configure: setup
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  $(if $(CCACHE),-DCMAKE_CXX_COMPILER_LAUNCHER=$(CCACHE)) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target $(TARGETS)

test: build
	scripts/with-services.sh ctest --test-dir $(BUILD_DIR) --output-on-failure \
	  --no-tests=error -j $(JOBS) $(CTEST_FLAGS)

# Builds only the demo's programs unless TARGETS is given.
demo: TARGETS = sluice_demo
demo: build
	bash scripts/demo.sh $(BUILD_DIR)

bench: build
	bash bench/run.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR)
