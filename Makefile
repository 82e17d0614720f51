# LoRA Twin: `make demo` runs the default scenario, `make test` runs every check.
# Both install what is missing first (Debian: libgsl-dev, libopenblas-dev; pytest for gpu/ CPU tests).
SWIFT ?= swift
PYTHON ?= python3
APT_PACKAGES = libgsl-dev libopenblas-dev

.PHONY: deps pydeps demo test test-swift test-python bench build release format-check

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; \
	fi

pydeps:
	@$(PYTHON) -c "import pytest, yaml" 2>/dev/null || $(PYTHON) -m pip install -q pytest pyyaml

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

demo: release
	.build/release/loratwin simulate

test: deps pydeps release
	$(SWIFT) test
	LORATWIN_BIN=.build/release/loratwin $(PYTHON) -m pytest gpu/tests -q

bench: release
	.build/release/twin-bench
