# The front door. `make demo` and `make test` work on a fresh Debian 12 machine: both install the
# Debian packages they need first (tools/ci/install_deps.sh, idempotent).
BAZEL ?= bazel
BAZEL_FLAGS ?=

.PHONY: deps build test demo bench format clean

deps:
	@./tools/ci/install_deps.sh

build: deps
	$(BAZEL) build $(BAZEL_FLAGS) //...

# Runs every test, then prints one closing line "N passed, N failed" counting test cases.
test: deps
	@status=0; $(BAZEL) test $(BAZEL_FLAGS) //... || status=$$?; \
	targets=$$($(BAZEL) query 'tests(//...)' 2>/dev/null); \
	python3 tools/ci/test_summary.py "$$($(BAZEL) info bazel-testlogs 2>/dev/null)" $$targets \
	  || status=1; \
	exit $$status

# Starts callmeshd and the greeter on loopback, calls the greeter through the sidecar, stops both.
demo: deps
	$(BAZEL) build $(BAZEL_FLAGS) //:callmeshd //:callmesh //services/greeter:greeter_server \
	  //services/greeter:greeter_client //services/greeter:async_client
	@./tools/demo/quickstart.sh

bench: deps
	@./bench/run.sh

format:
	@find runtime services tests tools bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	$(BAZEL) clean
