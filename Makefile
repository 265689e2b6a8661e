# The two commands of the README. Each provisions libtorch (PyPI's torch wheel, cached in
# ~/.cache/vaelab) and wires the tch build to it, so nothing needs exporting by hand.
SHELL := /bin/bash
WITH_TORCH := source scripts/libtorch-env.sh &&

.PHONY: quickstart test build lint readme-report gpu-binary

quickstart:
	$(WITH_TORCH) cargo build && target/debug/vaelab run experiments/quickstart.yaml \
		&& target/debug/vaelab report experiments/quickstart.yaml

# As root, ensure-test-deps.sh installs chromium and Slurm, so their tests must run:
# VAELAB_REQUIRE_SYSTEM_TESTS makes a skip a failure there, as CI=true does.
# Tests that skip for a missing system package list themselves in target/tmp/, printed
# after the summary (nextest hides a passing test's output).
test:
	scripts/ensure-test-deps.sh
	rm -f target/tmp/skipped-tests.txt
	$(WITH_TORCH) scripts/python-test-deps.sh && { if [ "$$(id -u)" = 0 ]; then export VAELAB_REQUIRE_SYSTEM_TESTS=1; fi; \
		cargo nextest run --no-fail-fast; status=$$?; \
		if [ -s target/tmp/skipped-tests.txt ]; then \
			echo "skipped for a missing system package:"; cat target/tmp/skipped-tests.txt; fi; \
		exit $$status; }

# Regenerates the quickstart figure and table that the README shows (readme/).
readme-report: quickstart
	scripts/readme-report.sh

build:
	$(WITH_TORCH) cargo build

lint:
	$(WITH_TORCH) cargo fmt --all --check && cargo clippy --workspace --all-targets -- -D warnings

# Release binaries for a machine with a GPU and PyTorch 2.11 but no Rust toolchain:
# gpu/vaelab and gpu/vaelab-torch (which `vaelab` hands run, bench and info to; they must
# stay side by side), stripped, ignored by git, each refused if over 50 MiB. vaelab-torch
# finds that machine's libtorch through LD_LIBRARY_PATH (scripts/gpu-check.sh sets it).
gpu-binary:
	$(WITH_TORCH) cargo build --release
	mkdir -p gpu
	@for bin in vaelab vaelab-torch; do \
		cp target/release/$$bin gpu/$$bin && strip gpu/$$bin || exit 1; \
		size=$$(stat -c %s gpu/$$bin); echo "gpu/$$bin: $$((size / 1048576)) MiB"; \
		[ "$$size" -lt $$((50 * 1048576)) ] || { echo "gpu/$$bin is over 50 MiB"; exit 1; }; \
	done
