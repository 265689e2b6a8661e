# The two commands of the README. Each provisions libtorch (PyPI's torch wheel, cached in
# ~/.cache/vaelab) and wires the tch build to it, so nothing needs exporting by hand.
SHELL := /bin/bash
WITH_TORCH := source scripts/libtorch-env.sh &&

.PHONY: quickstart test build lint

quickstart:
	$(WITH_TORCH) cargo build && target/debug/vaelab run experiments/quickstart.yaml

test:
	$(WITH_TORCH) cargo nextest run --no-fail-fast

build:
	$(WITH_TORCH) cargo build

lint:
	$(WITH_TORCH) cargo fmt --check && cargo clippy --all-targets -- -D warnings
