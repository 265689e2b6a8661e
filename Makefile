# The two commands of the README. Each provisions libtorch (PyPI's torch wheel, cached in
# ~/.cache/vaelab) and wires the tch build to it, so nothing needs exporting by hand.
SHELL := /bin/bash
WITH_TORCH := source scripts/libtorch-env.sh &&

.PHONY: quickstart test build lint readme-report gpu-binary gpu-dry-run

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

# Release binaries for a machine with a GPU and PyTorch 2.11 but no Rust toolchain: one
# archive, gpu/vaelab-gpu.tar.xz, of vaelab and vaelab-torch (which `vaelab` hands run,
# bench and info to; they must stay side by side), stripped; refused over 32 MiB, so it and
# the tree fit what a GPU call can carry. gpu/ is ignored by git. vaelab-torch finds that
# machine's libtorch through LD_LIBRARY_PATH (scripts/gpu-check.sh sets it).
GPU_ARCHIVE := gpu/vaelab-gpu.tar.xz
GPU_ARCHIVE_LIMIT := 33554432

gpu-binary:
	$(WITH_TORCH) cargo build --release
	rm -rf gpu && mkdir -p gpu/pack
	cp target/release/vaelab target/release/vaelab-torch gpu/pack/
	strip gpu/pack/vaelab gpu/pack/vaelab-torch
	tar -C gpu/pack -cf - vaelab vaelab-torch | xz -9 -T0 > $(GPU_ARCHIVE)
	rm -rf gpu/pack
	@size=$$(stat -c %s $(GPU_ARCHIVE)); echo "$(GPU_ARCHIVE): $$size bytes ($$((size / 1048576)) MiB)"; 		[ "$$size" -le $(GPU_ARCHIVE_LIMIT) ] || { echo "$(GPU_ARCHIVE) is over 32 MiB: too big to carry"; rm -f $(GPU_ARCHIVE); exit 1; }

# The GPU check's dry run on the CPU, on the archive's own binaries unpacked, as they will
# run on the machine with the GPU (results in gpu-check/).
gpu-dry-run:
	[ -f $(GPU_ARCHIVE) ] || $(MAKE) gpu-binary
	rm -rf gpu/unpacked && mkdir -p gpu/unpacked && tar -xJf $(GPU_ARCHIVE) -C gpu/unpacked
	$(WITH_TORCH) OUT=gpu-check scripts/gpu-check.sh gpu/unpacked/vaelab --dry-run
