# cairn - two commands do everything on a fresh Debian 12 machine, as root:
#   make run    install what is missing, build, serve ./var/repo's "demo" volume
#   make test   install what is missing, build (with ASan/UBSan), run the whole suite
#
# Other targets: make build (release build in build/), make bench, make clean.

SHELL := /bin/bash
DEB_PACKAGES := meson ninja-build pkg-config gcc libc6-dev \
	libfuse3-dev fuse3 libcurl4-openssl-dev libssl-dev liblz4-dev libxxhash-dev \
	libisal-dev libjson-c-dev libxml2-dev libconfig-dev libiscsi-dev libiscsi-bin qemu-utils qemu-block-extra \
	tgt e2fsprogs fdisk lz4 util-linux procps iproute2 python3 clang libclang-rt-dev
REPO ?= $(CURDIR)/var/repo
STATE ?= $(CURDIR)/var/state
LISTEN ?= 127.0.0.1:3260

.PHONY: all deps build build-san run test bench clean

all: build

# Install only what is missing; apt-get update runs only when something is.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "error: packages missing ($$missing); run as root or install them" >&2; exit 1; fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi
	@# node and npm run the pinned s3rver of the S3 tests; any install of them will do
	@if ! command -v npm >/dev/null; then \
		echo "installing: nodejs npm"; export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null || exit 1; \
	fi

build: deps
	@[ -f build/build.ninja ] || meson setup build --buildtype=release -Db_ndebug=false >/dev/null
	@ninja -C build

build-san: deps
	@[ -f build-san/build.ninja ] || meson setup build-san -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	@ninja -C build-san

run: build
	@mkdir -p $(STATE)
	@[ -f $(REPO)/config ] || build/cairn init -r $(REPO)
	@build/cairn volume list -r $(REPO) --json | grep -q '"name": *"demo"' || build/cairn volume create demo --size 8G -r $(REPO)
	@echo "cairn: serving $(REPO) on $(LISTEN); attach with:"
	@echo "  iscsi-ls -s iscsi://$(LISTEN)/"
	@echo "  iscsi-inq iscsi://$(LISTEN)/iqn.2026-11.org.cairn:demo/0"
	@echo "  qemu-img convert -p -O raw disk.img iscsi://$(LISTEN)/iqn.2026-11.org.cairn:demo/0"
	@echo "Ctrl-C stops it cleanly."
	@exec build/cairn serve -r $(REPO) --listen $(LISTEN) --state-dir $(STATE)

test: build build-san
	@bash tests/run.sh

bench: build
	@bash bench/run.sh

clean:
	rm -rf build build-san
