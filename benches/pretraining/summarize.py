#!/usr/bin/env python3
"""Mean ± sample sd of the test accuracy per arch and arm, from pretraining.sh's TSV, as a
markdown table (accuracies in %)."""
import csv
import statistics
import sys
from collections import defaultdict

runs = defaultdict(list)
secs = defaultdict(list)
with open(sys.argv[1]) as f:
    for row in csv.DictReader(f, delimiter="\t"):
        if not row["test_accuracy"]:
            sys.exit(f"missing accuracy in {row}")
        runs[(row["arch"], row["arm"])].append(float(row["test_accuracy"]))
        secs[(row["arch"], row["arm"])].append(float(row["seconds"]))

print("| arch | first conv init | runs | test accuracy (mean ± sd) | per-seed | s/run |")
print("|---|---|---|---|---|---|")
for (arch, arm), accs in runs.items():
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    each = ", ".join(f"{a:.2f}" for a in accs)
    print(
        f"| {arch} | {arm} | {len(accs)} | {statistics.mean(accs):.2f} ± {sd:.2f} % "
        f"| {each} | {statistics.mean(secs[(arch, arm)]):.0f} |"
    )
