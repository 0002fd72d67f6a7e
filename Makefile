# The front door. `make demo` and `make test` work on a fresh Debian 12 machine: both install the
# Debian packages they need first (tools/ci/install_deps.sh, idempotent).
BAZEL ?= bazel
BAZEL_FLAGS ?=

.PHONY: deps build test demo bench format clean install uninstall images pod-demo compose-demo \
	kube-demo deploy-test test-summary

deps:
	@./tools/ci/install_deps.sh

build: deps
	$(BAZEL) build $(BAZEL_FLAGS) //...

# Runs every test, then prints one closing line "N passed, N failed" counting test cases.
test: deps
	@status=0; $(BAZEL) test $(BAZEL_FLAGS) //... || status=$$?; \
	$(MAKE) --no-print-directory test-summary || status=1; \
	exit $$status

# The closing line over Bazel's test cases, plus the container checks of `make deploy-test` when
# SUMMARY_FLAGS="--junit-dir bazel-deploy-testlogs" (.ci/run).
test-summary:
	@targets=$$($(BAZEL) query 'tests(//...)' 2>/dev/null); \
	python3 tools/ci/test_summary.py $(SUMMARY_FLAGS) "$$($(BAZEL) info bazel-testlogs 2>/dev/null)" \
	  $$targets

# Container images (podman, buildah; see deploy/): callmeshd with the CLI, and the examples.
images: deps
	@./deploy/images.sh

# The quickstart as a pod with only its loopback: sync, async with a callback, kill -9 of the
# sidecar and recovery, SIGTERM drain.
pod-demo: images
	@./deploy/pod-demo.sh

# hello -> world with a callback, as a podman-compose project.
compose-demo: images
	@./deploy/compose-demo.sh

# deploy/kubernetes/ run by `podman kube play`, with a call through them.
kube-demo: images
	@./deploy/kube-demo.sh

# The container tests (images, pod, compose, Kubernetes manifests); results as JUnit XML in
# bazel-deploy-testlogs/, counted by `make test-summary SUMMARY_FLAGS=...`.
deploy-test: deps
	@./deploy/tests/run.sh

# The quickstart (callmeshd and the greeter on loopback: sync, async, the CLI), then the four
# examples of services/ (fib, hello_world, callbacks, long_job) on generated typed stubs.
demo: deps
	$(BAZEL) build $(BAZEL_FLAGS) //:callmeshd //:callmesh //services/...
	@./tools/demo/quickstart.sh
	@./tools/demo/examples.sh

bench: deps
	@./bench/run.sh

format:
	@find runtime services tests tools bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	$(BAZEL) clean

# Installation (packaging/install.sh says what goes where). Built with -c opt unless
# INSTALL_BAZEL_FLAGS says otherwise (the consumer tests install the fastbuild binaries that
# `bazel test` already built). `make uninstall` with the same PREFIX/DESTDIR removes exactly
# what was installed (the manifest in $(PREFIX)/share/callmesh/).
PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
SYSCONFDIR ?=
SYSTEMDUNITDIR ?=
INSTALL_BAZEL_FLAGS ?= -c opt

install: deps
	$(BAZEL) build $(BAZEL_FLAGS) $(INSTALL_BAZEL_FLAGS) //packaging:install_inputs
	@./packaging/install.sh --bazel-bin "$$($(BAZEL) info $(BAZEL_FLAGS) $(INSTALL_BAZEL_FLAGS) bazel-bin)" \
	  --prefix "$(PREFIX)" --destdir "$(DESTDIR)" --libdir "$(LIBDIR)" \
	  $(if $(SYSCONFDIR),--sysconfdir "$(SYSCONFDIR)") $(if $(SYSTEMDUNITDIR),--systemdunitdir "$(SYSTEMDUNITDIR)")

uninstall:
	@./packaging/uninstall.sh --prefix "$(PREFIX)" --destdir "$(DESTDIR)"
