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
	$(WITH_TORCH) { if [ "$$(id -u)" = 0 ]; then export VAELAB_REQUIRE_SYSTEM_TESTS=1; fi; \
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
	$(WITH_TORCH) cargo fmt --check && cargo clippy --all-targets -- -D warnings

# A release binary for a machine with a GPU and PyTorch 2.11 but no Rust toolchain:
# stripped into gpu/vaelab (ignored by git), refused if over 50 MiB. It finds that
# machine's libtorch through LD_LIBRARY_PATH (scripts/gpu-check.sh sets it).
gpu-binary:
	$(WITH_TORCH) cargo build --release
	mkdir -p gpu && cp target/release/vaelab gpu/vaelab && strip gpu/vaelab
	@size=$$(stat -c %s gpu/vaelab); echo "gpu/vaelab: $$((size / 1048576)) MiB"; \
		[ "$$size" -lt $$((50 * 1048576)) ] || { echo "gpu/vaelab is over 50 MiB"; exit 1; }
