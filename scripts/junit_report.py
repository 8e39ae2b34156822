"""Summaries of pytest's JUnit XML reports for the CI log.

Usage:
    python scripts/junit_report.py times REPORT.xml...
        seconds per test file, one column per report, slowest file first
    python scripts/junit_report.py summary REPORT.xml...
        the same table over all reports, then each report's counts and a
        closing ``all: N passed, N failed, N skipped`` line

A report's column is named after its file (``jax.xml`` -> ``jax``). The
seconds of a test are pytest's: setup, call and teardown together; module
imports and collection are not in any file's row, so the rows add up to a
little less than the wall time of a run.
"""

import collections
import pathlib
import sys
import xml.etree.ElementTree as ET

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_file(classname):
    """``tests.models.test_x.TestY`` -> ``tests/models/test_x.py``."""
    parts = classname.split(".")
    for end in range(len(parts), 0, -1):
        path = "/".join(parts[:end]) + ".py"
        if (ROOT / path).is_file():
            return path
    return classname


def read(report):
    """Per-file seconds and test counts, and the report's outcome counts."""
    root = ET.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    seconds = collections.Counter()
    tests = collections.Counter()
    counts = collections.Counter()
    for suite in suites:
        total, skipped = int(suite.get("tests")), int(suite.get("skipped"))
        failed = int(suite.get("failures")) + int(suite.get("errors"))
        counts.update(
            passed=total - failed - skipped, failed=failed, skipped=skipped
        )
        for case in suite.iter("testcase"):
            name = test_file(case.get("classname", ""))
            seconds[name] += float(case.get("time", 0))
            tests[name] += 1
    return seconds, tests, counts


def table(reports):
    """Lines of a table: one row per test file, one column per report."""
    columns = [pathlib.Path(r).stem for r in reports]
    data = [read(r) for r in reports]
    files = set().union(*(seconds for seconds, _, _ in data))
    total = {f: sum(seconds[f] for seconds, _, _ in data) for f in files}
    count = {f: max(tests[f] for _, tests, _ in data) for f in files}
    width = max([len(f) for f in files] + [len("total")])
    many = len(columns) > 1
    heads = [*columns, "total"] if many else columns
    lines = [
        f"{'seconds per test file':<{width}}  {'tests':>5}  "
        + "  ".join(f"{h:>10}" for h in heads)
    ]

    def row(label, tests, values):
        cells = "  ".join(f"{v:>10.1f}" for v in values)
        return f"{label:<{width}}  {tests:>5}  {cells}"

    for f in sorted(files, key=lambda f: (-total[f], f)):
        values = [seconds.get(f, 0.0) for seconds, _, _ in data]
        lines.append(row(f, count[f], values + ([total[f]] if many else [])))
    sums = [sum(seconds.values()) for seconds, _, _ in data]
    lines.append(
        row("total", sum(count.values()), sums + ([sum(sums)] if many else []))
    )
    return lines


def summary(reports):
    lines = table(reports) if reports else []
    totals = collections.Counter(passed=0, failed=0, skipped=0)
    for report in reports:
        counts = read(report)[2]
        totals.update(counts)
        lines.append(
            f"{pathlib.Path(report).stem}: {counts['passed']} passed, "
            f"{counts['failed']} failed, {counts['skipped']} skipped"
        )
    lines.append(
        f"all: {totals['passed']} passed, {totals['failed']} failed, "
        f"{totals['skipped']} skipped"
    )
    return lines


def main(argv):
    if len(argv) < 2 or argv[0] not in ("times", "summary"):
        sys.exit(__doc__)
    reports = [r for r in argv[1:] if pathlib.Path(r).is_file()]
    if argv[0] == "summary":
        print("\n".join(summary(reports)))
    elif reports:
        print("\n".join(table(reports)))
    else:
        print("no JUnit report to time")


if __name__ == "__main__":
    main(sys.argv[1:])
