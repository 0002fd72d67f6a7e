# The front door. `make demo` and `make test` work on a fresh Debian 12 machine: both install the
# Debian packages they need first (tools/ci/install_deps.sh, idempotent).
BAZEL ?= bazel
BAZEL_FLAGS ?=

.PHONY: deps build test demo bench format clean install uninstall deb dist images pod-demo \
	compose-demo kube-demo deploy-test test-summary

deps:
	@./tools/ci/install_deps.sh

build: deps
	$(BAZEL) build $(BAZEL_FLAGS) //...

# Runs every test, then the consumer tests (tests/consumer/run.sh: callmesh installed, packaged and
# used from CMake, pkg-config and Bazel projects outside the main build), then prints one closing
# line "N passed, N failed" counting test cases of both.
CONSUMER_JUNIT = .cache/consumer/junit.xml

test: deps
	@status=0; $(BAZEL) test $(BAZEL_FLAGS) //... || status=$$?; \
	rm -f $(CONSUMER_JUNIT); \
	BAZEL="$(BAZEL)" MAKE="$(MAKE)" tests/consumer/run.sh --junit $(CONSUMER_JUNIT) || status=1; \
	$(MAKE) --no-print-directory test-summary || status=1; \
	exit $$status

# The closing line over Bazel's test cases and the consumer tests', plus with WITH_DEPLOY=1 the
# container checks of `make deploy-test` (JUnit files in $(DEPLOY_JUNIT_DIR); .ci/run).
DEPLOY_JUNIT_DIR = bazel-deploy-testlogs
test-summary:
	@targets=$$($(BAZEL) query 'tests(//...)' 2>/dev/null); \
	junit="--junit $(CONSUMER_JUNIT)"; \
	if [ -n "$(WITH_DEPLOY)" ]; then \
	  for file in $(DEPLOY_JUNIT_DIR)/*.xml; do junit="$$junit --junit $$file"; done; \
	fi; \
	python3 tools/ci/test_summary.py $$junit "$$($(BAZEL) info bazel-testlogs 2>/dev/null)" $$targets

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
# bazel-deploy-testlogs/, counted by `make test-summary WITH_DEPLOY=1`.
deploy-test: deps
	@./deploy/tests/run.sh

# The quickstart (callmeshd and the greeter on loopback: sync, async, the CLI), then the five
# examples of services/ (fib, hello_world, callbacks, long_job, orders) on generated typed stubs, then the
# secured step (certificates, tokens, TLS and mTLS, intruders refused).
demo: deps
	$(BAZEL) build $(BAZEL_FLAGS) //:callmeshd //:callmesh //services/...
	@./tools/demo/quickstart.sh
	@./tools/demo/examples.sh
	@./tools/demo/secured.sh

bench: deps
	@./bench/run.sh

# Cluster mode on one machine, no root (tools/demo/cluster.sh): three "hosts" as loopback ports,
# each with a nats-server (one JetStream cluster) and a callmeshd with a cluster block; the greeter
# on h3, then on h2 too. A sync call and async calls from h1 run on h3 (callbacks back on h1); then
# kill -9 of h3's callmeshd, the next calls answered on h2, h3 dropped after the TTL.
.PHONY: cluster-demo
cluster-demo: deps
	$(BAZEL) build $(BAZEL_FLAGS) //:callmeshd //:callmesh //services/greeter/... //services/orders/...
	@BIN="$$($(BAZEL) info $(BAZEL_FLAGS) bazel-bin 2>/dev/null)" ./tools/demo/cluster.sh

format:
	@find runtime services tests tools bench -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	$(BAZEL) clean
	chmod -R u+w .cache/consumer 2>/dev/null; rm -rf .cache/consumer dist

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

# dist/callmesh_<version>_<arch>.deb: the files of `make install` with PREFIX=/usr, Debian's layout,
# then lintian (installed with apt-get if missing); see packaging/deb.sh.
deb: deps
	$(BAZEL) build $(BAZEL_FLAGS) $(INSTALL_BAZEL_FLAGS) //packaging:install_inputs
	@./packaging/deb.sh --bazel-bin "$$($(BAZEL) info $(BAZEL_FLAGS) $(INSTALL_BAZEL_FLAGS) bazel-bin)" --out dist

# dist/callmesh-<version>.tar.gz: the tracked sources, buildable offline as the repository is.
dist:
	@./packaging/dist.sh --out dist
