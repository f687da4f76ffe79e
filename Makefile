# vigil-log-relay — every target works on a machine with Node and npm but no Bun:
# the pinned Bun (.bun-version) is installed under .tools/ on first use, nothing global.
SHELL := /bin/bash
BUN_VERSION := $(shell cat .bun-version)
TOOLS := $(CURDIR)/.tools
BUN := $(TOOLS)/bun-$(BUN_VERSION)/node_modules/.bin/bun
VERSION := $(shell node -p 'require("./package.json").version')
TEST_TIMEOUT ?= 60000

.PHONY: all install test typecheck build bench bench-k8s demo release clean

all: build

$(BUN):
	@echo "installing bun $(BUN_VERSION) under .tools/ (npm package 'bun')"
	@mkdir -p $(TOOLS)/bun-$(BUN_VERSION)
	@cd $(TOOLS)/bun-$(BUN_VERSION) && echo '{"private":true}' > package.json && \
	  npm install --no-save --no-package-lock --loglevel=error bun@$(BUN_VERSION) >/dev/null
	@$(BUN) --version >/dev/null

node_modules/.installed: $(BUN) package.json bun.lock
	$(BUN) install --frozen-lockfile
	@touch $@

install: node_modules/.installed

typecheck: install
	$(BUN) x tsc --noEmit -p .

test: install
	$(BUN) test --timeout $(TEST_TIMEOUT)

build: install
	$(BUN) scripts/build.ts --out dist/vigil-log-relay

# dist/release/vigil-log-relay-VERSION-linux-{x64,x64-musl,arm64,arm64-musl} and
# SHA256SUMS; the foreign Bun runtimes come from the npm registry (cached).
# One target: make release RELEASE_TARGETS=host (or linux-arm64,linux-x64-musl).
release: install
	$(BUN) scripts/release.ts

bench: build
	$(BUN) scripts/bench.ts

bench-k8s: build
	$(BUN) scripts/bench-k8s.ts

demo: build
	$(BUN) scripts/demo.ts

clean:
	rm -rf dist node_modules .tools
