#!/usr/bin/env bash
# Copies the quickstart report's loss figure and comparison into readme/ and the README,
# and the residual-norm, residual-controls and residual-question experiments' answers and
# comparisons into docs/studies.md, so both show what `make quickstart` and `vaelab
# run/report experiments/NAME.yaml` produce. Run through `make readme-report` (which runs the
# quickstart first); each experiment's block is updated when its report exists.
set -euo pipefail
cd "$(dirname "$0")/.."
report=report/quickstart
cp "$report/figures/curves-loss.png" readme/quickstart-loss.png
cp "$report/figures/final-metrics.png" readme/quickstart-final-metrics.png
cp "$report/tables/comparison.csv" readme/quickstart-comparison.csv

# Replaces the block between <!-- NAME-report:start/end --> of FILE (default README.md)
# with the answer and comparison table of report/NAME/report.md.
embed() {
python3 - "report/$1/report.md" "${2:-README.md}" "$1" "${3:-}" <<'PY'
import re, sys
path, readme_path, name, only_answer = sys.argv[1:5]
report, readme = (open(p, encoding="utf-8").read() for p in (path, readme_path))
# A study with a declared question shows its confirmatory answer; others their answer.
section = "## Confirmatory: the declared question\n\n" if "## Confirmatory" in report else "## Answer\n\n"
answer = report.split(section, 1)[1].split("\n## ", 1)[0].strip()
table = report.split("## Comparison\n\n", 1)[1].split("\n## ", 1)[0].strip()
start, end = f"<!-- {name}-report:start -->", f"<!-- {name}-report:end -->"
block = f"{start}\n{answer}\n{end}" if only_answer else f"{start}\n{answer}\n\n{table}\n{end}"
updated, count = re.subn(re.escape(start) + ".*?" + re.escape(end),
                         lambda _: block, readme, flags=re.S)
if count != 1:
    sys.exit(f"{readme_path}: expected one {start} ... {end} block")
open(readme_path, "w", encoding="utf-8").write(updated)
PY
}
embed quickstart
for experiment in residual-norm residual-controls residual-question; do
  if [ -f "report/$experiment/report.md" ]; then
    embed "$experiment" docs/studies.md
  fi
done
# The front door shows the declared question's answer alone.
if [ -f report/residual-question/report.md ]; then
  embed residual-question README.md answer-only
fi
echo "readme/, README.md and docs/studies.md updated from report/"
