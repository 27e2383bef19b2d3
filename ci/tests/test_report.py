"""Tests of ci/report.py: the parsing of test logs, the report tables, the golden findings.

python3 -m unittest discover -s ci/tests   (stdlib only; fixtures in ci/tests/data, see its
README.md)
"""

import contextlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import report  # noqa: E402  (ci/report.py)

DATA = os.path.join(HERE, "data")
NOT_RUN = ("not run: not selected for this run; its checks/findings were reported by the tests of other "
           "runs from recorded data")

# The meta file ci/matrix wrote for the real 3.3.1 run that passing.log is an excerpt of.
PASSED_META = {"venv_status": "ok", "venv_s": "1", "cython": "3.3.1", "build_status": "ok", "build_s": "317",
               "test_s": "328", "passed": "244", "failed": "0", "test_status": "ok", "status": "passed",
               "wall": "646"}


def data(name):
    return os.path.join(DATA, name)


def marked(path, marker):
    """The JSON objects after marker in a log: an oracle independent of report.parse_lines."""
    out = []
    with open(path) as f:
        for line in f:
            if line.startswith(marker):
                out.append(json.loads(line[len(marker):]))
    return out


class Runs:
    """A runs folder as ci/matrix leaves it: <release>/meta and <release>/test.log."""

    def __init__(self):
        self.root = tempfile.mkdtemp()
        self.runs = os.path.join(self.root, "runs")
        self.out = os.path.join(self.root, "out")
        os.makedirs(self.runs)

    def add(self, release, meta, log=None, text=None):
        d = os.path.join(self.runs, release)
        os.makedirs(d)
        with open(os.path.join(d, "meta"), "w") as f:
            f.writelines("%s=%s\n" % kv for kv in meta.items())
        if log is not None:
            shutil.copy(log, os.path.join(d, "test.log"))
        if text is not None:
            with open(os.path.join(d, "test.log"), "w") as f:
                f.write(text)

    def report(self, releases, golden_log=None, wall=0):
        """Runs ci/report.py report; returns (summary line, report.md lines, report.json)."""
        args = ["report", "--runs", self.runs, "--out", self.out, "--wall-seconds", str(wall)]
        for r in releases:
            args += ["--release", r]
        if golden_log:
            args += ["--golden-findings", golden_log]
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            status = report.main(args)
        if status != 0:
            raise AssertionError("ci/report.py report exited with %r" % status)
        with open(os.path.join(self.out, "report.md")) as f:
            md = f.read().split("\n")
        with open(os.path.join(self.out, "report.json")) as f:
            doc = json.load(f)
        return stdout.getvalue(), md, doc

    def close(self):
        shutil.rmtree(self.root)


def row(md, first, section=None):
    """The table row of report.md whose first cell is first (in section, "## Releases" for a release)."""
    if section is None:
        section = "## Releases" if re.fullmatch(r"[0-9][0-9.]*", first) else None
    if section is not None:
        start = md.index(section)
        end = next((i for i in range(start + 1, len(md)) if md[i].startswith("## ")), len(md))
        md = md[start:end]
    rows = [line for line in md if line.startswith("| %s | " % first)]
    assert len(rows) == 1, (first, rows)
    return rows[0]


class ParseLines(unittest.TestCase):
    def test_a_real_log_of_a_passing_run(self):
        reports, findings, bad = report.parse_lines(data("passing.log"))
        self.assertEqual(reports, marked(data("passing.log"), "cyview-report: "))
        self.assertEqual(findings, marked(data("passing.log"), "cyview-finding: "))
        self.assertEqual((len(reports), len(findings), bad), (142, 5, 0))

    def test_a_real_log_of_a_failing_test_has_no_report_lines(self):
        self.assertEqual(report.parse_lines(data("failing-test.log")), ([], [], 0))

    def test_a_marker_anywhere_in_a_line_and_a_line_that_does_not_parse(self):
        with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
            f.write('test a ... cyview-report: {"check": "c", "cases": 1, "passed": 1, "failed": 0} trailing\n'
                    'cyview-report: {"check": "cut off\n'
                    'cyview-finding:   {"id": "i", "kind": "k"}{"not": "read"}\n'
                    'no marker {"check": "x"}\n')
        try:
            reports, findings, bad = report.parse_lines(f.name)
        finally:
            os.unlink(f.name)
        self.assertEqual(reports, [{"check": "c", "cases": 1, "passed": 1, "failed": 0}])
        self.assertEqual(findings, [{"id": "i", "kind": "k"}])
        self.assertEqual(bad, 1)

    def test_release_order_is_numeric(self):
        self.assertEqual(sorted(["3.10.0", "3.3.1", "0.29.37", "3.1.0b1", "3.1.8"], key=report.vkey),
                         ["0.29.37", "3.1.8", "3.1.0b1", "3.3.1", "3.10.0"])


class Tables(unittest.TestCase):
    def setUp(self):
        self.runs = Runs()

    def tearDown(self):
        self.runs.close()

    def test_a_passing_run(self):
        self.runs.add("3.3.1", PASSED_META, log=data("passing.log"))
        summary, md, doc = self.runs.report(["3.3.1"], wall=649)
        reports = marked(data("passing.log"), "cyview-report: ")
        mine = [c for c in reports if c["release"] in ("3.3.1", "any")]
        self.assertEqual(len(mine), 34)  # 27 golden checks, 1 findings, 5 layout, 1 fuzz ("any")
        self.assertEqual(summary, "ci/matrix: 1 releases, 142 checks, 5 findings; failed: none; skipped: none\n")
        self.assertIn("Generated by `ci/matrix` for Cython 3.3.1 (total wall time 10m 49s). "
                      "Checks and findings are attributed to the release they name.", md)
        self.assertEqual(row(md, "3.3.1"), "| 3.3.1 | passed | 10m 46s | 244 | 0 | 34 | %d | 0 | 5 |"
                         % sum(c["cases"] for c in mine))
        # Releases named by the checks of the golden tests, not run themselves.
        for r in ("0.29.37", "3.0.12", "3.1.8", "3.2.9"):
            self.assertEqual(row(md, r), "| %s | %s | - | - | - | 27 | %d | 0 | 0 |" % (
                r, NOT_RUN, sum(c["cases"] for c in reports if c["release"] == r)))
        self.assertEqual(row(md, "check"), "| check | 0.29.37 | 3.0.12 | 3.1.8 | 3.2.9 | 3.3.1 |")
        self.assertEqual(row(md, "acquisition checks"),
                         "| acquisition checks | 1663/1663 | 1663/1663 | 1663/1663 | 1663/1663 | 1663/1663 |")
        self.assertEqual(row(md, "fuzz: safe view operations"), "| fuzz: safe view operations | - | - | - | - | 20000/20000 |")
        self.assertEqual(row(md, "layout: cython_to_rust_by_value"),
                         "| layout: cython_to_rust_by_value | - | - | - | - | 5/5 |")
        self.assertIn("| release | layout checks | cases | passed | failed |", md)
        # layout: 100 + 1 + 25 + 5 + 8 cases
        self.assertEqual(row(md, "3.3.1", "## Layout"), "| 3.3.1 | 5 | 139 | 139 | 0 |")
        self.assertEqual(len([line for line in md if line.startswith("### ")]), 5)
        self.assertIn("| `memory safety: Cython selects an element outside the source / v = live_support.direct(16, "
                      "8, [0], [8]); v[0:0:-2]` | outside-source | 3.3.1 |", md)
        self.assertEqual(doc["releases"][-1]["tests"], {"passed": 244, "failed": 0})
        self.assertEqual(doc["releases"][-1]["steps"]["build"], {"status": "ok", "seconds": 317})
        self.assertNotIn("malformed_report_lines", doc)

    def test_a_failing_test(self):
        # What ci/matrix records for the run of failing-test.log (cy_failed_test_names).
        self.runs.add("3.3.1", {"venv_status": "ok", "venv_s": "1", "cython": "3.3.1", "build_status": "ok",
                                "build_s": "40", "test_s": "90", "passed": "39", "failed": "1",
                                "test_status": "failed", "status": "failed",
                                "reason": "1 test(s) failed: python_semantics_equal_range_slicing_per_dimension",
                                "wall": "131"}, log=data("failing-test.log"))
        summary, md, doc = self.runs.report(["3.3.1"])
        self.assertEqual(summary, "ci/matrix: 1 releases, 0 checks, 0 findings; failed: 3.3.1; skipped: none\n")
        self.assertEqual(row(md, "3.3.1"), "| 3.3.1 | failed: 1 test(s) failed: "
                         "python_semantics_equal_range_slicing_per_dimension | 2m 11s | 39 | 1 | 0 | 0 | 0 | 0 |")
        self.assertIn("No test printed a `cyview-report:` line.", md)
        self.assertIn("None reported.", md)
        self.assertEqual(doc["releases"][0]["steps"]["test"], {"status": "failed", "seconds": 90})

    def test_a_check_with_failed_cases(self):
        meta = dict(PASSED_META, status="failed", test_status="failed", passed="243", failed="1",
                    reason="1 test(s) failed: cython_3_3_1::transpose_matches_cython")
        self.runs.add("3.3.1", meta, text='cyview-report: {"cases":248,"check":"transpose","failed":2,'
                                          '"passed":246,"release":"3.3.1"}\n')
        summary, md, _ = self.runs.report(["3.3.1"])
        self.assertEqual(row(md, "transpose"), "| transpose | 246/248 (**2 failed**) |")
        self.assertTrue(row(md, "3.3.1").endswith("| 243 | 1 | 1 | 248 | 2 | 0 |"), row(md, "3.3.1"))
        self.assertIn("failed: 3.3.1;", summary)

    def test_a_build_failure(self):
        # ci/matrix's reason: the first line of build.log that starts with "error".
        with open(data("build-failure.log")) as f:
            why = next(line.strip() for line in f if re.match("^error", line))
        self.assertEqual(why, "error[E0308]: mismatched types")
        self.runs.add("3.0.12", {"venv_status": "ok", "venv_s": "1", "cython": "3.0.12", "build_status": "failed",
                                 "build_s": "48", "status": "failed", "reason": "build failed: " + why, "wall": "49"})
        self.runs.add("3.3.1", PASSED_META, log=data("passing.log"))
        summary, md, doc = self.runs.report(["3.3.1", "3.0.12"])
        self.assertEqual(summary, "ci/matrix: 2 releases, 142 checks, 5 findings; failed: 3.0.12; skipped: none\n")
        # The golden tests of the 3.3.1 run still report 3.0.12's checks from recorded data.
        cases = sum(c["cases"] for c in marked(data("passing.log"), "cyview-report: ") if c["release"] == "3.0.12")
        self.assertEqual(row(md, "3.0.12"), "| 3.0.12 | failed: build failed: error[E0308]: mismatched types "
                                            "| 49s | - | - | 27 | %d | 0 | 0 |" % cases)
        obj = doc["releases"][1]
        self.assertEqual(obj["steps"], {"venv": {"status": "ok", "seconds": 1},
                                        "build": {"status": "failed", "seconds": 48},
                                        "test": {"status": "not run", "seconds": 0}})
        self.assertNotIn("tests", obj)

    def test_a_skipped_release_and_a_pipe_in_a_cell(self):
        self.runs.add("3.1.8", {"venv_status": "failed", "venv_s": "3", "status": "skipped",
                                "reason": "venv creation failed: No solution found | cython==3.1.8", "wall": "3"})
        summary, md, _ = self.runs.report(["3.1.8"])
        self.assertEqual(row(md, "3.1.8"), "| 3.1.8 | skipped: venv creation failed: No solution found \\| "
                                           "cython==3.1.8 | 3s | - | - | 0 | 0 | 0 | 0 |")
        self.assertEqual(summary, "ci/matrix: 1 releases, 0 checks, 0 findings; failed: none; skipped: 3.1.8\n")

    def test_a_missing_log_and_a_missing_run(self):
        # 3.3.1: the build failed before its test.log; 3.2.9: selected but nothing recorded at all.
        self.runs.add("3.3.1", {"status": "failed", "reason": "build failed: error: linker `cc` not found"})
        summary, md, _ = self.runs.report(["3.3.1", "3.2.9"], golden_log=os.path.join(self.runs.root, "absent.log"))
        self.assertEqual(row(md, "3.3.1"), "| 3.3.1 | failed: build failed: error: linker `cc` not found | 0s "
                                           "| - | - | 0 | 0 | 0 | 0 |")
        self.assertEqual(row(md, "3.2.9"), "| 3.2.9 | failed: its run left no record (no meta file, or an empty "
                                           "one) | 0s | - | - | 0 | 0 | 0 | 0 |")
        self.assertEqual(summary, "ci/matrix: 2 releases, 0 checks, 0 findings; failed: 3.2.9, 3.3.1; "
                                  "skipped: none\n")
        self.assertIn("None reported.", md)

    def test_a_check_reported_differently_by_two_runs(self):
        line = 'cyview-report: {"cases":10,"check":"c","failed":%d,"passed":%d,"release":"3.3.1"}\n'
        self.runs.add("0.29.37", PASSED_META, text=line % (0, 10))
        self.runs.add("3.3.1", PASSED_META, text=line % (1, 9))
        _, md, doc = self.runs.report(["0.29.37", "3.3.1"])
        self.assertEqual(row(md, "c"), "| c | - | 9/10 (**1 failed**) / 10/10 |")
        self.assertEqual(doc["releases"][1]["checks"], [
            {"check": "c", "cases": 10, "passed": 9, "failed": 1, "reported_in_runs": ["3.3.1"]},
            {"check": "c", "cases": 10, "passed": 10, "failed": 0, "reported_in_runs": ["0.29.37"]}])

    def test_malformed_lines_are_counted(self):
        self.runs.add("3.3.1", PASSED_META, text='cyview-report: {"check": "cut\ncyview-finding: not json\n')
        _, md, doc = self.runs.report(["3.3.1"])
        self.assertEqual(doc["malformed_report_lines"], 2)
        self.assertEqual(md[-2:], ["2 report lines could not be parsed.", ""])

    def test_golden_findings_merge_across_releases(self):
        golden_log = os.path.join(self.runs.root, "golden-findings.log")
        with open(golden_log, "w") as f:
            for rel, detail in (("3.3.1", "d"), ("0.29.37", "d"), ("3.0.12", "e")):
                f.write(report.finding_line({"id": "golden/x", "kind": "crash", "release": rel,
                                             "reproducer": "r", "detail": detail}) + "\n")
        self.runs.add("3.3.1", PASSED_META, text="")
        _, md, doc = self.runs.report(["3.3.1"], golden_log=golden_log)
        self.assertEqual(row(md, "`golden/x`"), "| `golden/x` | crash | 0.29.37, 3.0.12, 3.3.1 |")
        self.assertEqual(doc["findings"][0]["details"], {"0.29.37": "d", "3.0.12": "e", "3.3.1": "d"})
        self.assertIn("* 3.0.12: e", md)

    def test_the_command_line_needs_a_release(self):
        with contextlib.redirect_stderr(io.StringIO()), self.assertRaises(SystemExit) as e:
            report.main(["report", "--runs", self.runs.runs, "--out", self.runs.out])
        self.assertEqual(e.exception.code, 2)


class MatrixOutput:
    """A folder as `ci/matrix --cython X ...` leaves it (runs/, golden-findings.log, report.json,
    report.md), made the way ci/matrix makes it: meta files and test logs, then `report`."""

    def __init__(self, root, name, golden_log=None):
        self.dir = os.path.join(root, name)
        self.runs = os.path.join(self.dir, "runs")
        os.makedirs(self.runs)
        if golden_log is not None:
            shutil.copy(golden_log, os.path.join(self.dir, "golden-findings.log"))

    def add(self, release, meta, log=None):
        d = os.path.join(self.runs, release)
        os.makedirs(d)
        with open(os.path.join(d, "meta"), "w") as f:
            f.writelines("%s=%s\n" % kv for kv in meta.items())
        if log is not None:
            shutil.copy(log, os.path.join(d, "test.log"))

    def report(self, wall):
        args = ["report", "--runs", self.runs, "--out", self.dir, "--wall-seconds", str(wall),
                "--golden-findings", os.path.join(self.dir, "golden-findings.log")]
        for r in sorted(os.listdir(self.runs)):
            args += ["--release", r]
        with contextlib.redirect_stdout(io.StringIO()):
            status = report.main(args)
        if status != 0:
            raise AssertionError("ci/report.py report exited with %r" % status)


# What ci/matrix records for a release whose build failed (see Tables.test_a_build_failure).
BUILD_FAILED_META = {"venv_status": "ok", "venv_s": "1", "cython": "3.0.12", "build_status": "failed",
                     "build_s": "48", "status": "failed", "reason": "build failed: error[E0308]: mismatched types",
                     "wall": "49"}


class Merge(unittest.TestCase):
    """merge: the reports of one CI job per release, as one report."""

    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.golden_log = os.path.join(self.root, "golden-findings.log")
        with open(self.golden_log, "w") as f:
            for rel in ("0.29.37", "3.3.1"):
                f.write(report.finding_line({"id": "golden/x", "kind": "crash", "release": rel,
                                             "reproducer": "r", "detail": "d"}) + "\n")
        self.out = os.path.join(self.root, "merged")

    def tearDown(self):
        shutil.rmtree(self.root)

    def job(self, name, release, meta, log=None, wall=0, report_json=True):
        """The artifact of one CI job: `ci/matrix --cython release`."""
        o = MatrixOutput(self.root, name, self.golden_log)
        o.add(release, meta, log)
        if report_json:
            o.report(wall)
        return o.dir

    def merge(self, *args):
        """Runs ci/report.py merge; returns (status, stdout, stderr)."""
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            status = report.main(["merge", "--out", self.out] + list(args))
        return status, stdout.getvalue(), stderr.getvalue()

    def merged(self):
        with open(os.path.join(self.out, "report.md")) as f:
            md = f.read().split("\n")
        with open(os.path.join(self.out, "report.json")) as f:
            return md, json.load(f)

    def test_the_merge_of_one_job_per_release_is_the_report_of_one_run_of_both(self):
        a = self.job("report-cython-3.3.1", "3.3.1", PASSED_META, data("passing.log"), wall=649)
        b = self.job("report-cython-3.0.12", "3.0.12", BUILD_FAILED_META, wall=52)
        status, summary, _ = self.merge(a, b)
        self.assertEqual(status, 0)
        md, doc = self.merged()
        # The same runs as one ci/matrix run of both releases.
        one = MatrixOutput(self.root, "one-run", self.golden_log)
        one.add("3.3.1", PASSED_META, data("passing.log"))
        one.add("3.0.12", BUILD_FAILED_META)
        one.report(701)
        with open(os.path.join(one.dir, "report.json")) as f:
            single = json.load(f)
        for key in ("releases_selected", "releases", "layout", "findings"):
            self.assertEqual(doc[key], single[key], key)
        with open(os.path.join(one.dir, "report.md")) as f:
            self.assertEqual(md[3:], f.read().split("\n")[3:])
        # Only the origin differs.
        self.assertEqual((doc["generated_by"], doc["merged_from"], doc["wall_seconds"]),
                         ("ci/report.py merge", 2, 649))
        self.assertTrue(md[2].startswith("Merged by `ci/report.py merge` from 2 `ci/matrix` runs for Cython "
                                         "3.0.12, 3.3.1 (the longest run's wall time 10m 49s). "), md[2])
        self.assertEqual(summary, "ci/report.py merge: 2 releases, 142 checks, 6 findings; failed: 3.0.12; "
                                  "skipped: none\n")
        self.assertEqual(row(md, "3.0.12"), "| 3.0.12 | failed: build failed: error[E0308]: mismatched types "
                                            "| 49s | - | - | 27 | %d | 0 | 0 |"
                         % sum(c["cases"] for c in marked(data("passing.log"), "cyview-report: ")
                               if c["release"] == "3.0.12"))
        self.assertEqual(row(md, "`golden/x`"), "| `golden/x` | crash | 0.29.37, 3.3.1 |")

    def test_a_job_that_left_no_artifact_and_one_that_stopped_before_its_report(self):
        # 3.3.1's job was killed after its tests (no report.json): its wall time is its meta's.
        a = self.job("report-cython-3.3.1", "3.3.1", PASSED_META, data("passing.log"), report_json=False)
        b = self.job("report-cython-3.0.12", "3.0.12", BUILD_FAILED_META, wall=52)
        status, summary, _ = self.merge("--release", "3.0.12", "--release", "3.2.9", "--release", "3.3.1", a, b)
        self.assertEqual(status, 0)
        md, doc = self.merged()
        self.assertEqual(doc["wall_seconds"], 646)
        self.assertEqual(doc["releases_selected"], ["3.0.12", "3.2.9", "3.3.1"])
        self.assertTrue(row(md, "3.2.9").startswith("| 3.2.9 | failed: its run left no record (no meta file, or "
                                                    "an empty one) | 0s | - | - | 27 | "), row(md, "3.2.9"))
        self.assertTrue(row(md, "3.3.1").startswith("| 3.3.1 | passed | 10m 46s | 244 | 0 | 34 |"), row(md, "3.3.1"))
        self.assertIn("failed: 3.0.12, 3.2.9;", summary)

    def test_a_release_in_two_folders_is_an_error(self):
        a = self.job("a", "3.3.1", PASSED_META, data("passing.log"), wall=649)
        b = self.job("b", "3.3.1", PASSED_META, wall=649)
        status, out, err = self.merge(a, b)
        self.assertEqual((status, out), (2, ""))
        self.assertEqual(err, "ci/report.py merge: Cython 3.3.1 was run in both %s and %s: merge one run of "
                              "each release\n" % (a, b))
        self.assertFalse(os.path.exists(self.out))

    def test_a_folder_that_is_not_a_ci_matrix_output(self):
        status, _, err = self.merge(self.root + "/absent")
        self.assertEqual(status, 2)
        self.assertEqual(err, "ci/report.py merge: %s/absent has no runs/ folder: give the folders ci/matrix "
                              "writes (target/cyview-report)\n" % self.root)


# What ci/matrix records for a build from an sdist (ci/lib.sh: cy_spec_meta) and its golden vectors.
SDIST_META = dict(PASSED_META, venv_s="9", build_s="290", test_s="301", wall="700",
                  source="Cython sdist /tmp/cython-3.3.1.tar.gz (sha256 e0e4)", source_kind="sdist",
                  source_spec="/tmp/cython-3.3.1.tar.gz", source_path="/tmp/cython-3.3.1.tar.gz",
                  source_sha256="e0e4", cython_compiled="false",
                  golden="target/cyview-report/runs/3.3.1/golden/cython.json", golden_status="ok",
                  golden_s="84")


class Sources(unittest.TestCase):
    """Where each run's Cython came from, in report.json and report.md."""

    def setUp(self):
        self.runs = Runs()

    def tearDown(self):
        self.runs.close()

    def test_an_sdist_build(self):
        self.runs.add("3.3.1", SDIST_META, log=data("passing.log"))
        _, md, doc = self.runs.report(["3.3.1"])
        rel = doc["releases"][-1]
        self.assertEqual(rel["source"], {"kind": "sdist", "spec": "/tmp/cython-3.3.1.tar.gz",
                                         "path": "/tmp/cython-3.3.1.tar.gz", "sha256": "e0e4",
                                         "label": "Cython sdist /tmp/cython-3.3.1.tar.gz (sha256 e0e4)",
                                         "cython_compiled": False})
        self.assertEqual(rel["cython"], "3.3.1")
        self.assertEqual(rel["golden_vectors"], {"from": "this build", "status": "ok", "seconds": 84,
                                                 "path": "target/cyview-report/runs/3.3.1/golden/cython.json"})
        self.assertEqual(row(md, "3.3.1", "## Sources"),
                         "| 3.3.1 | 3.3.1 | Cython sdist /tmp/cython-3.3.1.tar.gz (sha256 e0e4) | no (pure Python) "
                         "| generated from this build: target/cyview-report/runs/3.3.1/golden/cython.json (ok, 1m 24s) |")

    def test_a_patched_release_and_a_pinned_one(self):
        self.runs.add("3.3.1", dict(PASSED_META, source="cython==3.3.1 from PyPI", source_kind="version",
                                    source_spec="3.3.1", source_version="3.3.1", cython_compiled="true",
                                    golden="committed"), log=data("passing.log"))
        self.runs.add("3.2.9", dict(PASSED_META, cython="3.2.9", source_kind="patch",
                                    source_spec="3.2.9+patch:/tmp/fix.patch", source_version="3.2.9",
                                    source_sdist_sha256="aa11", source_patch="/tmp/fix.patch",
                                    source_patch_sha256="bb22"), text="")
        _, md, doc = self.runs.report(["3.2.9", "3.3.1"])
        by = {o["release"]: o for o in doc["releases"]}
        self.assertEqual(by["3.2.9"]["source"], {"kind": "patch", "spec": "3.2.9+patch:/tmp/fix.patch",
                                                 "version": "3.2.9", "sdist_sha256": "aa11",
                                                 "patch": "/tmp/fix.patch", "patch_sha256": "bb22"})
        self.assertNotIn("golden_vectors", by["3.2.9"])
        self.assertEqual(by["3.3.1"]["golden_vectors"], {"from": "committed"})
        self.assertEqual(row(md, "3.3.1", "## Sources"),
                         "| 3.3.1 | 3.3.1 | cython==3.3.1 from PyPI | yes | committed (tests/golden/cython.json) |")
        self.assertEqual(row(md, "3.2.9", "## Sources"), "| 3.2.9 | 3.2.9 | 3.2.9+patch:/tmp/fix.patch | - | - |")
        # Releases without a recorded source have no Sources row.
        self.assertNotIn("| 3.0.12 | ", "\n".join(md[md.index("## Sources"):md.index("## Checks")]))

    def test_a_run_without_source_records_has_no_sources_table(self):
        self.runs.add("3.3.1", PASSED_META, log=data("passing.log"))
        _, md, doc = self.runs.report(["3.3.1"])
        self.assertNotIn("## Sources", md)
        self.assertNotIn("source", doc["releases"][-1])


class Same(unittest.TestCase):
    """ci/report.py same: two reports compared without source and timing."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def report_of(self, name, meta, text, wall):
        runs = Runs()
        try:
            runs.add("3.3.1", meta, text=text)
            runs.report(["3.3.1"], wall=wall)
            path = os.path.join(self.tmp, name + ".json")
            shutil.copy(os.path.join(runs.out, "report.json"), path)
        finally:
            runs.close()
        return path

    def same(self, a, b):
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            status = report.main(["same", a, b])
        return status, stdout.getvalue().splitlines()

    def test_a_pinned_run_and_an_sdist_run_with_the_same_results(self):
        with open(data("passing.log")) as f:
            log = f.read()
        a = self.report_of("pinned", dict(PASSED_META, golden="committed"), log, 649)
        b = self.report_of("sdist", SDIST_META, log, 712)
        self.assertEqual(report.same_reports(a, b), [])
        status, out = self.same(a, b)
        self.assertEqual((status, out), (0, ["same (A: %s, B: %s; source and timing left out)" % (a, b)]))

    def test_differences_are_listed_one_a_line(self):
        with open(data("passing.log")) as f:
            log = f.read()
        # The sdist run: one transpose case failed, and a finding fewer.
        check = next(c for c in marked(data("passing.log"), "cyview-report: ")
                     if c["check"] == "transpose" and c["release"] == "3.3.1")
        compact = dict(sort_keys=True, separators=(",", ":"))  # as the tests print them
        old = "cyview-report: " + json.dumps(check, **compact)
        self.assertTrue(old in log)
        changed = dict(check, passed=check["passed"] - 1, failed=1)
        finding = marked(data("passing.log"), "cyview-finding: ")[0]
        lines = [line for line in log.replace(old, "cyview-report: " + json.dumps(changed, **compact)).split("\n")
                 if not line.startswith("cyview-finding: ") or json.loads(line[16:]) != finding]
        a = self.report_of("pinned", dict(PASSED_META, golden="committed"), log, 649)
        b = self.report_of("sdist", dict(SDIST_META, failed="1", status="failed", test_status="failed"),
                           "\n".join(lines), 712)
        status, out = self.same(a, b)
        self.assertEqual(status, 1)
        self.assertEqual(out[-1], "7 differences (A: %s, B: %s)" % (a, b))
        self.assertIn("/releases/3.3.1/checks/transpose/passed: A %d, B %d" % (check["passed"], check["passed"] - 1),
                      out)
        self.assertIn("/releases/3.3.1/checks/transpose/failed: A 0, B 1", out)
        self.assertIn("/releases/3.3.1/status: A \"passed\", B \"failed\"", out)
        self.assertIn("/releases/3.3.1/tests/failed: A 0, B 1", out)
        self.assertIn("/releases/3.3.1/findings: A 5, B 4", out)
        self.assertTrue(any(line.startswith("/findings/%s: only in A: " % finding["id"]) for line in out), out)

    def test_an_unreadable_report(self):
        a = self.report_of("pinned", PASSED_META, "", 1)
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            status, _ = self.same(a, os.path.join(self.tmp, "missing.json"))
        self.assertEqual(status, 2)
        self.assertIn("missing.json", stderr.getvalue())


class GoldenFindings(unittest.TestCase):
    """golden-findings on data/golden/cython.json (one release, 3.3.1) (5 slice cases and 1 compile probe of the real file)."""

    @classmethod
    def setUpClass(cls):
        cls.findings = report.golden_findings(data("golden"))

    def test_one_finding_per_kind_and_path(self):
        self.assertEqual([(f["id"], f["release"]) for f in self.findings], [
            ("golden/crash/object-slice-items", "3.3.1"),
            ("golden/ndim-overflow/object-slice-items", "3.3.1"),
            ("golden/outside-memory/compiled", "3.3.1"),
            ("golden/outside-memory/object", "3.3.1"),
            ("golden/outside-source/compiled-indirect", "3.3.1"),
            ("golden/outside-source/object-indirect", "3.3.1"),
            ("golden/compiler-crash/analyseexpressionstransform-indexerror", "3.3.1"),
        ])

    def test_detail_counts_the_cases(self):
        by_id = {f["id"]: f for f in self.findings}
        self.assertEqual(by_id["golden/outside-source/compiled-indirect"]["detail"],
                         "2 compiled slicing cases on indirect sources select an element that is not an element "
                         "of the source view (1 of them outside the memory block); 1 index patterns; "
                         "ids: slice-c-07146, slice-c-07156")
        self.assertEqual(by_id["golden/compiler-crash/analyseexpressionstransform-indexerror"]["detail"],
                         "The compiler crashes on 1 probes: `v[..., i1]` on `double[:]`")

    def test_the_reproducer_is_the_constructible_case(self):
        # slice-c-07146's source has an empty dimension (no _testbuffer constructor call makes it);
        # slice-c-07156 is a plain 4-element PIL buffer sliced [5:3:3].
        repro = {f["id"]: f for f in self.findings}["golden/outside-source/compiled-indirect"]["reproducer"]
        self.assertEqual(repro.split("\n"), [
            "# repro.pyx (cythonize -i repro.pyx; default directives: boundscheck, wraparound on)",
            "from cython cimport view",
            "def f(double[::view.generic] v, Py_ssize_t a0, Py_ssize_t b0, Py_ssize_t c0):",
            "    return v[a0:b0:c0]",
            "",
            "# Python",
            "from _testbuffer import ndarray, ND_PIL, ND_WRITABLE  # CPython's test module",
            "src = ndarray([float(x) for x in range(4)], shape=[4], format='d', flags=ND_PIL | ND_WRITABLE)",
            "# a PIL-style (indirect) buffer: shape (4,), strides (8,), suboffsets (0,)",
            "r = f(src, 5, 3, 3)",
            "# Cython returns shape (1,), strides (24,), suboffsets (0,); element byte offsets from src's first "
            "element: [null] (null: read through a slot that is not a pointer); src has 4 elements",
        ])

    def test_a_crash_reproducer_repeats_long_indexes(self):
        repro = {f["id"]: f for f in self.findings}["golden/crash/object-slice-items"]["reproducer"]
        self.assertEqual(repro.split("\n")[-3:], [
            "src = as_strided(np.arange(64.0)[32:], shape=(5,), strides=(8,))",
            "r = as_mv(src)[(slice(None),) * 64]",
            "# the process dies (signal 11)",
        ])

    def test_the_vectors_of_a_non_pinned_build(self):
        # --extra: one release's vectors as golden_run.py writes them (here 3.3.1's, split from
        # the merged file: what a build of 3.3.1 from its sdist gives) add that release's findings.
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "cython_fixtures", "golden"))
        import releases
        tmp = tempfile.mkdtemp()
        try:
            extra = os.path.join(tmp, "cython.json")
            with open(extra, "w") as f:
                json.dump(releases.split(releases.load(os.path.join(data("golden"), "cython.json")), "3.3.1"), f)
            stdout = io.StringIO()
            with contextlib.redirect_stdout(stdout):
                report.main(["golden-findings", "--golden", data("golden"), "--extra", extra])
        finally:
            shutil.rmtree(tmp)
        lines = [json.loads(line[len("cyview-finding: "):]) for line in stdout.getvalue().splitlines()]
        self.assertEqual(lines, self.findings + self.findings)

    def test_the_command_prints_one_line_per_finding(self):
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            report.main(["golden-findings", "--golden", data("golden")])
        lines = stdout.getvalue().splitlines()
        self.assertEqual(len(lines), 7)
        self.assertEqual([json.loads(line[len("cyview-finding: "):]) for line in lines], self.findings)


if __name__ == "__main__":
    unittest.main()
