# The front door. `make demo` and `make test` work on a fresh Debian 12 machine: both install the
# Debian packages they need first (tools/ci/install_deps.sh, idempotent).
BAZEL ?= bazel
BAZEL_FLAGS ?=

.PHONY: deps build test demo bench format clean install uninstall deb dist

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
	targets=$$($(BAZEL) query 'tests(//...)' 2>/dev/null); \
	python3 tools/ci/test_summary.py --junit $(CONSUMER_JUNIT) \
	  "$$($(BAZEL) info bazel-testlogs 2>/dev/null)" $$targets || status=1; \
	exit $$status

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
