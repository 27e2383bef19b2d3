"""Tests of ci/diff.py: the layout and golden-case comparison of two Cython builds.

The expected values come from the data, never from ci/diff.py: real layouts extracted from
Cython 0.29.37, 3.1.8 and 3.2.9 (ci/tests/data/layouts/), and the committed golden vectors,
whose merged form marks every case that differs between releases with a "releases" line
(cython_fixtures/golden/README.md), an oracle independent of the per-release documents.
"""

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "cython_fixtures", "golden"))
import diff  # noqa: E402  (ci/diff.py)
import releases  # noqa: E402  (cython_fixtures/golden/releases.py)

GOLDEN = os.path.join(ROOT, "crates", "cyview", "tests", "golden", "cython.json")


def layouts(version):
    with open(os.path.join(HERE, "data", "layouts", version + ".json")) as f:
        return json.load(f)


def differing_ids(a, b):
    """The ids of the committed file's cases whose line for release a is not its line for b."""
    line_of = {}
    with open(GOLDEN) as f:
        for raw in f:
            raw = raw.strip().rstrip(",")
            if not raw.startswith('{"releases"'):
                continue
            case = json.loads(raw)
            for r in case["releases"]:
                line_of[(case["id"], r)] = raw
    ids = {i for (i, _) in line_of}
    return {i for i in ids if line_of.get((i, a)) != line_of.get((i, b))}


class LayoutDiff(unittest.TestCase):
    def test_identical_layouts_have_no_difference(self):
        self.assertEqual(diff.layout_diff(layouts("3.2.9"), layouts("3.2.9")), [])

    def test_the_unused_field_of_3_2_is_a_rename_at_offset_40(self):
        a, b = layouts("3.1.8"), layouts("3.2.9")
        fa = {f["name"]: f for s in a["structs"] if s["name"] == "__pyx_memoryview_obj" for f in s["fields"]}
        fb = {f["name"]: f for s in b["structs"] if s["name"] == "__pyx_memoryview_obj" for f in s["fields"]}
        gone, new = sorted(set(fa) - set(fb)), sorted(set(fb) - set(fa))
        self.assertEqual((len(gone), len(new)), (1, 1))
        d = [x for x in diff.layout_diff(a, b) if x["struct"] == "__pyx_memoryview_obj"]
        renamed = [x for x in d if x["what"] == "field renamed"]
        self.assertEqual([x["field"] for x in renamed], gone)
        self.assertIn(new[0], renamed[0]["b"])
        self.assertIn("at %d " % fb[new[0]]["offset"], renamed[0]["b"])

    def test_every_moved_field_of_3_0_is_named_with_both_offsets(self):
        a, b = layouts("0.29.37"), layouts("3.1.8")
        d = diff.layout_diff(a, b)
        for sa in a["structs"]:
            sb = next(s for s in b["structs"] if s["name"] == sa["name"])
            fb = {f["name"]: f for f in sb["fields"]}
            for f in sa["fields"]:
                if f["name"] in fb and fb[f["name"]]["offset"] != f["offset"]:
                    hits = [x for x in d if x["struct"] == sa["name"] and x.get("field") == f["name"]
                            and x["what"] == "field offset"]
                    self.assertEqual([(x["a"], x["b"]) for x in hits], [(f["offset"], fb[f["name"]]["offset"])])
            if sa["size"] != sb["size"]:
                self.assertIn({"struct": sa["name"], "what": "size", "a": sa["size"], "b": sb["size"]}, d)


class GoldenDiff(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        merged = releases.load(GOLDEN)
        cls.docs = {r: releases.split(merged, r) for r in ("3.2.9", "3.3.1")}

    def test_same_document_differs_nowhere(self):
        compared, groups = diff.golden_diff(self.docs["3.3.1"], self.docs["3.3.1"])
        self.assertGreater(compared, 10000)
        self.assertEqual(groups, [])

    def test_the_changed_cases_are_those_the_merged_file_marks(self):
        expected = differing_ids("3.2.9", "3.3.1")
        self.assertTrue(expected)
        _, groups = diff.golden_diff(self.docs["3.2.9"], self.docs["3.3.1"], "3.2.9", "3.3.1")
        got = [i for g in groups for i in g["ids"]]
        self.assertEqual(len(got), len(set(got)))
        self.assertEqual(set(got), expected)

    def test_each_group_shows_both_outcomes_of_its_smallest_case(self):
        _, groups = diff.golden_diff(self.docs["3.2.9"], self.docs["3.3.1"], "3.2.9", "3.3.1")
        for g in groups:
            self.assertIn("# 3.2.9: ", g["reproducer"])
            self.assertIn("# 3.3.1: ", g["reproducer"])
            self.assertEqual(g["count"], len(g["ids"]))

    def test_a_case_outside_the_source_is_not_python_semantics(self):
        # The harness flags a case outside its source; Python's slicing never leaves it. So a
        # build that gives the same result is classed as differing from Python.
        doc = self.docs["3.3.1"]
        flagged = [c for c in doc["slice"] if c.get("outside_source")]
        self.assertTrue(flagged)
        for case in flagged[:50]:
            src = doc["sources"][case["source"]]
            self.assertEqual(diff.python_class(case, case, src),
                             "outside-source -> B differs from Python", case["id"])

    def test_command_line_writes_markdown_and_json(self):
        with tempfile.TemporaryDirectory() as tmp:
            for name, r in (("a", "3.2.9"), ("b", "3.3.1")):
                os.makedirs(os.path.join(tmp, name))
                with open(os.path.join(tmp, name, "golden.json"), "w") as f:
                    json.dump(self.docs[r], f)
                with open(os.path.join(tmp, name, "meta.json"), "w") as f:
                    json.dump({"version": r, "label": "cython==%s from PyPI" % r}, f)
            out, js = os.path.join(tmp, "d.md"), os.path.join(tmp, "d.json")
            with contextlib.redirect_stdout(io.StringIO()):
                rc = diff.main(["compare", "--a", os.path.join(tmp, "a"), "--b", os.path.join(tmp, "b"),
                                "--out", out, "--json", js])
            self.assertEqual(rc, 0)
            with open(js) as f:
                doc = json.load(f)
            self.assertEqual(doc["changed"], len(differing_ids("3.2.9", "3.3.1")))
            self.assertIsNone(doc["layouts"])
            self.assertEqual(doc["source_b"], "cython==3.3.1 from PyPI")
            with open(out) as f:
                text = f.read()
            self.assertIn("# ci/diff: 3.2.9 vs 3.3.1", text)
            self.assertIn("- 3.2.9: cython==3.2.9 from PyPI", text)

    def test_missing_golden_is_a_clear_error(self):
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run([sys.executable, os.path.join(ROOT, "ci", "diff.py"), "compare",
                                "--a", tmp, "--b", tmp], capture_output=True, text=True)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("has no golden.json", r.stderr)


if __name__ == "__main__":
    unittest.main()
