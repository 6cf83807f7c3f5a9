# llm-warden — the two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
WASM  := target/wasm32-wasip1/release/llm_warden.wasm
export RUSTUP_TOOLCHAIN := 1.95.0

.PHONY: run test toolchain venv wasm lint unit policy-tests validate integration system-deps bench bench-auth bench-guard bench-instructions floor-wasm bench-deps wasm-size cli schema fuzz-smoke soak soak-smoke clean

## make run: build, install Envoy locally, start the demo on 127.0.0.1:10000.
run: wasm venv
	$(PY) demo/run.py

## make test: everything CI checks.
test: lint unit policy-tests wasm venv validate integration fuzz-smoke soak-smoke

# rust-toolchain.toml pins 1.95.0 + wasm32-wasip1, but machines set RUSTUP_AUTO_INSTALL=0:
# install explicitly (idempotent, seconds when already there).
# Each step runs only when something is missing: `rustup toolchain install` re-syncs (and
# re-downloads) even an installed toolchain, which also forces a full rebuild.
toolchain:
	@rustup run 1.95.0 rustc --version >/dev/null 2>&1 || \
	  rustup toolchain install --no-self-update --profile minimal 1.95.0
	@installed="$$(rustup component list --installed --toolchain 1.95.0)"; \
	  for c in rustfmt clippy rust-std-wasm32-wasip1; do \
	    case "$$c" in rust-std-*) want="rust-std-$${c#rust-std-}";; *) want="$$c";; esac; \
	    grep -q "^$$want" <<<"$$installed" || missing="$$missing $$c"; \
	  done; \
	  for c in $$missing; do \
	    case "$$c" in rust-std-*) rustup target add --toolchain 1.95.0 "$${c#rust-std-}";; \
	                *) rustup component add --toolchain 1.95.0 "$$c";; esac; \
	  done

venv: $(VENV)/.installed
$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

wasm: toolchain
	cargo build --release --target wasm32-wasip1 --lib
	@ls -l $(WASM) | awk '{print "built " $$NF " (" $$5 " bytes)"}'

lint: toolchain
	cargo fmt --check
	cargo clippy --all-targets --features cli -- -D warnings
	cargo clippy --target wasm32-wasip1 --lib -- -D warnings

unit: toolchain
	cargo test

# envoy --mode validate on every Envoy YAML in the repo (loads the .wasm, runs on_configure).
validate: wasm venv cli
	$(PY) -m pytest -q tests/test_envoy_yaml.py tests/test_cli.py tests/test_deploy_files.py

## The native CLI: llm-warden check-config FILE | llm-warden schema
cli: toolchain
	cargo build --features cli --bin llm-warden

## Policy tests next to the example configs, run natively through the filter's pipeline.
policy-tests: cli
	target/debug/llm-warden test examples/plugin-configs/*.test.yaml

## Regenerate the checked-in JSON Schema of the plugin config.
schema: cli
	target/debug/llm-warden schema > schema/plugin-config.schema.json

integration: wasm venv system-deps
	$(PY) -m pytest -q tests/integration

# Debian packages the tests need: redis-server (global rate limiting). Installed only when
# missing; as root directly, otherwise through sudo.
system-deps:
	@command -v redis-server >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends redis-server; }

## make soak: mixed traffic through Envoy (2 workers) for SOAK_SECONDS (default 60).
soak: wasm venv
	$(PY) bench/soak.py

soak-smoke: wasm venv
	SOAK_SECONDS=15 $(PY) bench/soak.py

FUZZ_TARGETS := token config request_body sse redact_stream policy request_path
FUZZ_SECONDS ?= 10

## Fuzz every target for FUZZ_SECONDS each (CI: 10 s). Longer: make fuzz-smoke FUZZ_SECONDS=600
## or: cargo +nightly fuzz run <target>. Crashes land in fuzz/artifacts/ and become tests.
fuzz-smoke:
	@rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install --no-self-update --profile minimal nightly
	@command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
	cargo +nightly fuzz build
	@mkdir -p fuzz/corpus && for t in $(FUZZ_TARGETS); do \
	  if cargo +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 > fuzz/corpus/$$t.log 2>&1; then \
	    echo "fuzz $$t: $$(grep -E '^Done' fuzz/corpus/$$t.log)"; \
	  else \
	    tail -40 fuzz/corpus/$$t.log; echo "fuzz $$t FAILED (see fuzz/artifacts/$$t)"; exit 1; \
	  fi; \
	done

## make bench-auth: native verification cost per algorithm and for a cache hit.
bench-auth: toolchain
	cargo bench --bench auth

## make bench-guard: native input-guard cost for 1 MiB prompts (target: <= 10 ms each).
bench-guard: toolchain
	cargo bench --bench guard

## make bench: every benchmark (prints figures; asserts nothing).
bench: bench-auth wasm floor-wasm venv bench-deps
	cargo bench --bench ratelimit
	cargo bench --bench redact
	cargo bench --bench guard
	$(PY) tests/bench/redaction_in_envoy.py
	$(PY) bench/envoy_bench.py
	$(PY) bench/instructions.py
	@$(MAKE) --no-print-directory wasm-size

## Instructions per call under callgrind (a figure this noisy VM does not shift): passthrough,
## native jwt_authn with and without its cache, the floor filter and llm-warden (auth + scope +
## limit, + stream redaction, + tool-call inspection), each over the floor (about 20 minutes).
## Needs valgrind only (not oha), installed from Debian when missing.
bench-instructions: wasm floor-wasm venv
	@command -v valgrind >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends valgrind; }
	$(PY) bench/instructions.py

# The floor of bench-instructions (bench/floor-filter, its own workspace: `make test`, fmt and
# clippy of the main crate never build it). Its target dir is under target/ (`make clean`).
FLOOR_WASM := target/floor-filter/wasm32-wasip1/release/floor_filter.wasm
floor-wasm: toolchain
	cargo build --release --locked --target wasm32-wasip1 \
	  --manifest-path bench/floor-filter/Cargo.toml --target-dir target/floor-filter
	@ls -l $(FLOOR_WASM) | awk '{print "built " $$NF " (" $$5 " bytes)"}'

# wrk (load), binaryen (wasm-opt) and valgrind (instruction counts) from Debian, installed
# when missing; oha (constant-
# rate load for the half-load p99; wrk2 is not in Debian) from crates.io into .tools, once
# (it compiles in about 6 minutes on 2 cores).
OHA_VERSION := 1.16.0
bench-deps:
	@command -v wrk >/dev/null 2>&1 && command -v wasm-opt >/dev/null 2>&1 && command -v valgrind >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends wrk binaryen valgrind; }
	@.tools/bin/oha --version 2>/dev/null | grep -q "$(OHA_VERSION)" || \
	  cargo install oha --version $(OHA_VERSION) --locked --root .tools

## The .wasm after `wasm-opt -Oz` (target: <= 1 MiB).
wasm-size: wasm bench-deps
	wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
	  $(WASM) -o target/llm_warden.opt.wasm
	@ls -l $(WASM) target/llm_warden.opt.wasm | awk '{printf "%-45s %9d bytes (%.3f MiB)\n", $$NF, $$5, $$5/1048576}'

clean:
	cargo clean
	rm -rf $(VENV) run
