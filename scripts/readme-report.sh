#!/usr/bin/env bash
# Copies the quickstart report's loss figure and comparison into readme/ and the README,
# so the README shows what `make quickstart` produces. Run through `make readme-report`.
set -euo pipefail
cd "$(dirname "$0")/.."
report=report/quickstart
cp "$report/figures/curves-loss.png" readme/quickstart-loss.png
cp "$report/figures/final-metrics.png" readme/quickstart-final-metrics.png
cp "$report/tables/comparison.csv" readme/quickstart-comparison.csv
python3 - "$report/report.md" README.md <<'PY'
import re, sys
report, readme = (open(p, encoding="utf-8").read() for p in sys.argv[1:3])
answer = report.split("## Answer\n\n", 1)[1].split("\n## ", 1)[0].strip()
table = report.split("## Comparison\n\n", 1)[1].split("\n## ", 1)[0].strip()
block = f"<!-- quickstart-report:start -->\n{answer}\n\n{table}\n<!-- quickstart-report:end -->"
updated, count = re.subn(
    r"<!-- quickstart-report:start -->.*?<!-- quickstart-report:end -->",
    lambda _: block, readme, flags=re.S)
if count != 1:
    sys.exit("README.md: expected one <!-- quickstart-report:start/end --> block")
open(sys.argv[2], "w", encoding="utf-8").write(updated)
PY
echo "readme/ and README.md updated from $report"
