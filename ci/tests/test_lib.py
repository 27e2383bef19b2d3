"""Tests of ci/lib.sh's counting, option parsing and --cython SPECs (run through bash; stdlib only).

python3 -m unittest discover -s ci/tests
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(HERE, "data")


def sh(script, *args):
    """Runs script in bash with ci/lib.sh sourced (CY_PROG=prog); returns (status, stdout, stderr)."""
    p = subprocess.run(["bash", "-c", "CY_PROG=prog; . ci/lib.sh; " + script, "bash"] + list(args),
                       cwd=ROOT, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def data(name):
    return os.path.join(DATA, name)


class CountTests(unittest.TestCase):
    """cy_count_tests: cargo's "test result:" lines summed."""

    def test_passing_run_sums_every_test_result_line(self):
        # cyview unit tests 4, cython_golden 100, fuzz_views 4, findings 1, layout 6.
        self.assertEqual(sh('cy_count_tests "$1"', data("passing.log"))[1], "115 0\n")

    def test_failing_run_counts_the_failed_test(self):
        # geometry_properties 11 passed, properties 11 passed 1 failed, view 17 passed.
        self.assertEqual(sh('cy_count_tests "$1"', data("failing-test.log"))[1], "39 1\n")

    def test_build_failure_prints_no_test_result(self):
        self.assertEqual(sh('cy_count_tests "$1"', data("build-failure.log"))[1], "0 0\n")

    def test_failed_test_names(self):
        self.assertEqual(sh('cy_failed_test_names "$1"', data("failing-test.log"))[1],
                         "python_semantics_equal_range_slicing_per_dimension\n")
        self.assertEqual(sh('cy_failed_test_names "$1"', data("passing.log"))[1], "")


class RunCounted(unittest.TestCase):
    """cy_run_counted: runs, logs, counts; a failure that printed no failed result counts one."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.log = os.path.join(self.tmp, "sub", "run.log")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def run_counted(self, fixture, status, quiet=True, counter="cy_count_tests"):
        """cy_run_counted on a command that prints a fixture log and exits with status."""
        script = ('set -euo pipefail; CY_QUIET=%d cy_run_counted %s "$1" bash -c \'cat "$0"; exit "$1"\' "$2" "$3"; '
                  'echo "status=$cy_status passed=$cy_passed failed=$cy_failed"' % (int(quiet), counter))
        rc, out, err = sh(script, self.log, data(fixture), str(status))
        self.assertEqual(rc, 0, err)
        return out

    def test_a_build_failure_counts_one_failure(self):
        out = self.run_counted("build-failure.log", 101)
        self.assertEqual(out, "status=101 passed=0 failed=1\n")
        with open(data("build-failure.log")) as f, open(self.log) as g:
            self.assertEqual(f.read(), g.read())

    def test_a_failing_test_counts_once(self):
        self.assertEqual(self.run_counted("failing-test.log", 101), "status=101 passed=39 failed=1\n")

    def test_a_passing_run(self):
        self.assertEqual(self.run_counted("passing.log", 0), "status=0 passed=115 failed=0\n")

    def test_the_output_goes_to_stdout_too_unless_quiet(self):
        out = self.run_counted("failing-test.log", 101, quiet=False)
        with open(data("failing-test.log")) as f:
            self.assertEqual(out, f.read() + "status=101 passed=39 failed=1\n")

    def test_errexit_is_kept(self):
        rc, out, _ = sh('set -e; cy_run_counted cy_count_tests "$1" false; echo "after $cy_failed"; false; echo no',
                        self.log)
        self.assertEqual((rc, out), (1, "after 1\n"))

    def test_a_ci_script_counted_by_its_summary_line(self):
        # .ci/run: ci/test's last line; a failure it did not count (exit 1, "0 failed") is one.
        summary = os.path.join(self.tmp, "summary.log")
        for text, status, want in (("ci/test: ...\n244 passed, 0 failed\n", 0, "passed=244 failed=0"),
                                   ("244 passed, 2 failed\n", 1, "passed=244 failed=2"),
                                   ("244 passed, 0 failed\n", 1, "passed=244 failed=1"),
                                   ("ci/test: missing cargo\n", 1, "passed=0 failed=1")):
            with open(summary, "w") as f:
                f.write(text)
            out = self.run_counted(summary, status, counter="cy_count_summary")
            self.assertEqual(out, "status=%d %s\n" % (status, want))

    def test_summary_counts_of_a_ci_script(self):
        with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
            f.write("ci/test: Cython 3.3.1, 600s:\n1 passed, 2 failed\n...\n241 passed, 3 failed\n")
        try:
            self.assertEqual(sh('cy_count_summary "$1"', f.name)[1], "241 3\n")
            # A ci/ script that stopped before its summary line: one failure.
            self.assertEqual(sh('cy_count_summary "$1"', data("build-failure.log"))[1], "0 1\n")
        finally:
            os.unlink(f.name)


class ParseOpts(unittest.TestCase):
    """cy_parse_opts: the --cython X options of ci/test, ci/matrix, ci/valgrind."""

    def parse(self, spec, *args):
        return sh('cy_parse_opts %s -- "$@"; echo "cython=${cy_opt_cython[*]-} no_golden=${cy_opt_no_golden-unset}"'
                  % spec, *args)

    def test_single_release_the_last_wins(self):
        self.assertEqual(self.parse("--no-golden", "--cython", "3.0.12", "--cython=0.29.37")[1],
                         "cython=0.29.37 no_golden=0\n")

    def test_repeatable_releases_and_a_flag(self):
        self.assertEqual(self.parse("--multi --no-golden", "--cython", "3.0.12", "--no-golden", "--cython=0.29.37")[1],
                         "cython=3.0.12 0.29.37 no_golden=1\n")

    def test_no_arguments(self):
        self.assertEqual(self.parse("--multi")[1], "cython= no_golden=unset\n")

    def test_unknown_argument_exits_2(self):
        rc, out, err = self.parse("", "--no-golden")
        self.assertEqual((rc, out, err), (2, "", "prog: unknown argument: --no-golden (see prog --help)\n"))

    def test_cython_without_a_version_exits_2(self):
        rc, out, err = self.parse("--multi", "--cython")
        self.assertEqual((rc, out, err), (2, "", "prog: --cython needs a version, e.g. --cython 3.3.1\n"))

    def test_help_prints_the_header_comment(self):
        p = subprocess.run([os.path.join(ROOT, "ci", "test"), "--help"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertTrue(p.stdout.startswith("The project's test command."), p.stdout)
        self.assertIn("ci/test --no-golden", p.stdout)
        self.assertNotIn("set -euo pipefail", p.stdout)


class Releases(unittest.TestCase):
    """cy_releases, cy_newest, cy_partner over ci/cython-versions.txt."""

    def test_partner_is_the_oldest_or_for_the_oldest_the_newest(self):
        rels = sh("cy_releases")[1].split()
        self.assertGreaterEqual(len(rels), 2)
        newest = sh("cy_newest")[1].strip()
        self.assertEqual(newest, rels[-1])
        self.assertEqual(sh('cy_partner "$1"', rels[0])[1].strip(), newest)
        for r in rels[1:]:
            self.assertEqual(sh('cy_partner "$1"', r)[1].strip(), rels[0])

    def test_releases_sort_numerically(self):
        rels = sh("cy_releases")[1].split()
        key = [tuple(int(x) for x in r.split(".")) for r in rels]
        self.assertEqual(key, sorted(key))


SPEC_VARS = ("kind", "key", "version", "path", "sha256", "rev", "patch", "patch_sha256", "label")


def resolve(spec, cwd=None):
    """cy_spec_resolve SPEC: (status, {var: value}, stderr)."""
    script = ('cd "$2"; cy_spec_resolve "$1" || exit; ' +
              "; ".join('echo "%s=$cy_spec_%s"' % (v, v) for v in SPEC_VARS))
    rc, out, err = sh(script, spec, cwd or ROOT)
    return rc, dict(line.split("=", 1) for line in out.splitlines()), err


def sha256_of(data):
    return hashlib.sha256(data).hexdigest()


class Specs(unittest.TestCase):
    """cy_spec_resolve: what ci/matrix --cython SPEC names, and the key of its venv."""

    def setUp(self):
        self.tmp = os.path.realpath(tempfile.mkdtemp())

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def write(self, rel, data=b"x"):
        path = os.path.join(self.tmp, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_versions(self):
        rc, v, _ = resolve("3.3.1")
        self.assertEqual(rc, 0)
        self.assertEqual({k: v[k] for k in ("kind", "key", "version", "path", "label")},
                         {"kind": "version", "key": "3.3.1", "version": "3.3.1", "path": "",
                          "label": "cython==3.3.1 from PyPI"})
        for x in ("0.29.37", "3.4.0a1", "3.1.0rc2", "3.0.0b3", "3.2.0.dev1"):
            self.assertEqual(sh('cy_is_version "$1"', x)[0], 0, x)
        for x in ("3", "latest", "3.3.1.tar.gz", "./3.3.1", "3.3.1+patch:x.patch"):
            self.assertNotEqual(sh('cy_is_version "$1"', x)[0], 0, x)

    def test_an_sdist_and_a_wheel_by_their_sha256(self):
        sdist = self.write("dl/cython-3.3.1.tar.gz", b"not really a tarball")
        wheel = self.write("dl/cython-3.3.1-py3-none-any.whl", b"not really a wheel")
        rc, v, _ = resolve("dl/cython-3.3.1.tar.gz", cwd=self.tmp)  # a relative path
        self.assertEqual(rc, 0)
        sha = sha256_of(b"not really a tarball")
        self.assertEqual((v["kind"], v["key"], v["path"], v["sha256"]), ("sdist", "src-" + sha[:12], sdist, sha))
        self.assertEqual(v["label"], "Cython sdist %s (sha256 %s)" % (sdist, sha))
        rc, v, _ = resolve(wheel)
        sha = sha256_of(b"not really a wheel")
        self.assertEqual((rc, v["kind"], v["key"], v["sha256"]), (0, "wheel", "whl-" + sha[:12], sha))

    def test_a_checkout_by_its_content(self):
        self.write("src/setup.py", b"# setup")
        self.write("src/Cython/__init__.py", b"__version__ = '9.9'")
        src = os.path.join(self.tmp, "src")
        rc, v, _ = resolve(src)
        self.assertEqual((rc, v["kind"], v["path"], v["rev"]), (0, "checkout", src, ""))
        self.assertRegex(v["key"], r"^src-[0-9a-f]{12}$")
        self.assertEqual(v["key"], "src-" + v["sha256"][:12])
        # Build products and caches do not change the key; a source file does.
        self.write("src/Cython/__pycache__/x.cpython-311.pyc")
        self.write("src/Cython/Compiler/Scanning.cpython-311-x86_64-linux-gnu.so")
        self.write("src/build/lib/Cython/x.py")
        self.write("src/Cython.egg-info/PKG-INFO")
        self.assertEqual(resolve(src)[1]["key"], v["key"])
        self.write("src/Cython/Shadow.py", b"# changed")
        self.assertNotEqual(resolve(src)[1]["key"], v["key"])

    def test_a_git_checkout_names_its_revision(self):
        if shutil.which("git") is None:
            self.skipTest("no git")
        self.write("src/setup.py", b"# setup")
        self.write("src/Cython/__init__.py", b"")
        src = os.path.join(self.tmp, "src")
        git = ["git", "-C", src, "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
        subprocess.run(git + ["init", "-q"], check=True)
        subprocess.run(git + ["add", "."], check=True)
        subprocess.run(git + ["commit", "-qm", "c"], check=True)
        rev = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
        rc, v, _ = resolve(src)
        self.assertEqual((rc, v["rev"]), (0, rev))
        self.assertEqual(v["label"], "Cython source checkout %s at git %s (content sha256 %s)" % (src, rev, v["sha256"]))
        self.write("src/setup.py", b"# edited")
        self.assertEqual(resolve(src)[1]["rev"], rev + "-dirty")

    def test_a_patched_release(self):
        patch = self.write("fix.patch", b"--- a/x\n+++ b/x\n")
        rc, v, _ = resolve("3.3.1+patch:" + patch)
        self.assertEqual(rc, 0)
        psha = sha256_of(b"--- a/x\n+++ b/x\n")
        key = "patch-" + sha256_of(("3.3.1\n%s\n" % psha).encode())[:12]
        self.assertEqual((v["kind"], v["version"], v["patch"], v["patch_sha256"], v["key"]),
                         ("patch", "3.3.1", patch, psha, key))
        self.assertEqual(v["label"], "PyPI sdist of Cython 3.3.1 with %s (sha256 %s)" % (patch, psha))
        # Another release, the same patch: another venv.
        self.assertNotEqual(resolve("3.2.9+patch:" + patch)[1]["key"], key)

    def test_the_newest_release_with_its_patches(self):
        newest = sh("cy_newest")[1].strip()
        patches = sorted(os.path.join(ROOT, "cython_patches", f) for f in os.listdir(os.path.join(ROOT, "cython_patches"))
                         if f.startswith("cython-%s-" % newest) and f.endswith(".patch"))
        self.assertTrue(patches)
        self.assertEqual(sh("cy_patched_newest"), (0, "%s+patch:%s\n" % (newest, ",".join(patches)), ""))

    def test_several_patches_in_order(self):
        a = self.write("a.patch", b"--- a/x\n")
        b = self.write("b.patch", b"+++ b/x\n")
        rc, v, _ = resolve("3.3.1+patch:%s,%s" % (a, b))
        self.assertEqual(rc, 0)
        both = sha256_of(b"--- a/x\n+++ b/x\n")
        self.assertEqual((v["patch"], v["patch_sha256"]), ("%s,%s" % (a, b), both))
        self.assertEqual(v["label"], "PyPI sdist of Cython 3.3.1 with %s and %s (sha256 %s)" % (a, b, both))
        # The order is part of the build.
        self.assertNotEqual(resolve("3.3.1+patch:%s,%s" % (b, a))[1]["key"], v["key"])
        rc, _, err = resolve("3.3.1+patch:%s,none.patch" % a, cwd=self.tmp)
        self.assertEqual((rc, err), (1, "prog: --cython 3.3.1+patch:%s,none.patch: no such patch file: none.patch\n" % a))
        self.assertEqual(sh('cy_spec_absolute "$1" "$2"', "3.3.1+patch:a.patch,b.patch", self.tmp),
                         (0, "3.3.1+patch:%s,%s\n" % (a, b), ""))

    def test_what_is_not_a_spec(self):
        self.write("notes.txt")
        os.makedirs(os.path.join(self.tmp, "empty"))
        cases = [
            ("latest", "prog: --cython latest: not a Cython version (e.g. 3.3.1), an sdist (.tar.gz), a wheel "
                       "(.whl), a source checkout (a folder with Cython/ and setup.py) or VERSION+patch:FILE\n"),
            ("missing/cython.tar.gz", "prog: --cython missing/cython.tar.gz: no such file or folder\n"),
            ("notes.txt", "prog: --cython notes.txt: a file, but not an sdist (.tar.gz, .zip) or a wheel (.whl)\n"),
            ("empty", "prog: --cython empty: not a Cython source checkout (a folder with Cython/ and setup.py)\n"),
            ("3.3.1+patch:none.patch", "prog: --cython 3.3.1+patch:none.patch: no such patch file: none.patch\n"),
            ("new+patch:notes.txt", "prog: --cython new+patch:notes.txt: 'new' is not a Cython version (the form "
                                    "is VERSION+patch:FILE[,FILE...], e.g. 3.3.1+patch:cython_patches/fix.patch)\n"),
        ]
        for spec, err in cases:
            rc, out, got = resolve(spec, cwd=self.tmp)
            self.assertEqual((rc, out, got), (1, {}, err), spec)

    def test_relative_paths_are_made_absolute_against_a_folder(self):
        self.write("dl/cython.tar.gz")
        self.write("fix.patch")
        cases = [("3.3.1", "3.3.1"), ("dl/cython.tar.gz", self.tmp + "/dl/cython.tar.gz"), ("dl", self.tmp + "/dl"),
                 ("3.3.1+patch:fix.patch", "3.3.1+patch:" + self.tmp + "/fix.patch"),
                 ("/abs/x.whl", "/abs/x.whl"), ("latest", "latest"), ("missing.tar.gz", "missing.tar.gz"),
                 ("3.3.1+patch:missing.patch", "3.3.1+patch:missing.patch")]
        for spec, want in cases:
            self.assertEqual(sh('cy_spec_absolute "$1" "$2"', spec, self.tmp), (0, want + "\n", ""), spec)

    def test_matrix_refuses_a_spec_that_names_nothing_before_running(self):
        p = subprocess.run([os.path.join(ROOT, "ci", "matrix"), "--cython", "3.3.1", "--cython",
                            os.path.join(self.tmp, "cython-3.3.1.tar.gz")], capture_output=True, text=True)
        self.assertEqual((p.returncode, p.stdout, p.stderr),
                         (2, "", "ci/matrix: --cython %s/cython-3.3.1.tar.gz: no such file or folder\n" % self.tmp))

    def test_matrix_help_describes_spec(self):
        p = subprocess.run([os.path.join(ROOT, "ci", "matrix"), "--help"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        for form in ("ci/matrix --cython SPEC", "PATH/cython-X.tar.gz", "X+patch:FILE", "a Cython source checkout"):
            self.assertIn(form, p.stdout)


if __name__ == "__main__":
    unittest.main()
