"""Tests of ci/timeline.py: release ordering, digests, change bisection, finding spans, the
SVG, the PNG check, and the committed docs/timeline.{md,svg} against their generator.

python3 -m unittest discover -s ci/tests   (stdlib only; fixtures in ci/tests/data/timeline,
cut from a real ci/sweep run by its cut.py, see ci/tests/data/README.md)
"""

import copy
import json
import os
import shutil
import struct
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET
import zlib

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
import timeline  # noqa: E402  (ci/timeline.py)

DATA = os.path.join(HERE, "data", "timeline")
RELEASES = ["0.29.37", "3.1.8", "3.2.9", "3.3.1"]
SVG = "{http://www.w3.org/2000/svg}"


def load(name):
    with open(os.path.join(DATA, name)) as f:
        return json.load(f)


def probe_dir(tmp, release, golden=None, layouts=None):
    """A folder as ci/probe leaves it, from the fixtures of one release."""
    d = os.path.join(tmp, release)
    os.makedirs(d)
    shutil.copy(os.path.join(DATA, "steps-%s" % release), os.path.join(d, "steps"))
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(golden or load("golden-%s.json" % release), f)
    with open(os.path.join(d, "layouts.json"), "w") as f:
        json.dump(layouts or load("layouts-%s.json" % release), f)
    return d


class Tmp(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cyview-timeline-test.")
        self.addCleanup(shutil.rmtree, self.tmp)

    def results(self, releases=RELEASES):
        out = {}
        for x in releases:
            out[x] = timeline.summarize(x, probe_dir(self.tmp, x))
        return out


class Versions(unittest.TestCase):
    def test_pip_listing_is_parsed_and_ordered_as_pep440(self):
        # The shape of `pip index versions cython --pre` (pip 24), newest first.
        text = ("cython (3.3.1)\n"
                "Available versions: 3.3.1, 3.3.0, 3.3.0b1, 3.3.0a1, 3.1.0rc2, 3.1.0rc1, 3.1.0b1, 3.0.0, "
                "3.0.0rc1, 3.0.0b3, 0.29.37, 0.29, 0.28.6, 0.20, 0.19.2, 0.9.8.1.1\n"
                "  INSTALLED: 3.3.1\n")
        got = timeline.select_releases(timeline.parse_pip_versions(text), "0.20")
        self.assertEqual(got, ["0.20", "0.28.6", "0.29", "0.29.37", "3.0.0b3", "3.0.0rc1", "3.0.0",
                               "3.1.0b1", "3.1.0rc1", "3.1.0rc2", "3.3.0a1", "3.3.0b1", "3.3.0", "3.3.1"])

    def test_trailing_zeros_do_not_count(self):
        self.assertEqual(timeline.version_key("0.29"), timeline.version_key("0.29.0"))
        self.assertLess(timeline.version_key("0.29"), timeline.version_key("0.29.1"))

    def test_no_listing_is_an_error(self):
        with self.assertRaises(ValueError):
            timeline.parse_pip_versions("ERROR: No matching distribution found for cython\n")


class Digests(unittest.TestCase):
    def test_layout_digest_ignores_the_release_and_follows_the_fields(self):
        old, new = load("layouts-0.29.37.json"), load("layouts-3.1.8.json")
        a, b = timeline.layout_digests(old), timeline.layout_digests(new)
        self.assertEqual(sorted(a), sorted(timeline.STRUCTS))
        self.assertEqual(a["__Pyx_memviewslice"][0], b["__Pyx_memviewslice"][0])
        self.assertNotEqual(a["__pyx_memoryview_obj"][0], b["__pyx_memoryview_obj"][0])
        renamed = copy.deepcopy(old)
        renamed["cython_version"], renamed["source"] = "9.9.9", "other.c"
        self.assertEqual(timeline.layout_digests(renamed), a)

    def test_case_digest_does_not_depend_on_source_numbering(self):
        doc = load("golden-3.3.1.json")
        base = {c: timeline.case_digests(doc, c) for c in timeline.CATEGORIES}
        perm = copy.deepcopy(doc)
        n = len(perm["sources"])
        order = list(reversed(range(n)))          # new index of old source i: n-1-i
        perm["sources"] = [doc["sources"][n - 1 - i] for i in range(n)]
        for cat in timeline.CATEGORIES:
            for c in perm.get(cat, []):
                for key in ("source", "dst", "src"):
                    if isinstance(c.get(key), int):
                        c[key] = order[c[key]]
        self.assertEqual({c: timeline.case_digests(perm, c) for c in timeline.CATEGORIES}, base)

    def test_a_changed_outcome_changes_the_category_digest(self):
        doc = load("golden-3.3.1.json")
        before = timeline.category_digest(timeline.case_digests(doc, "element"))
        doc["element"][0]["expect"] = {"err": {"kind": "IndexError", "message": "changed"}}
        self.assertNotEqual(timeline.category_digest(timeline.case_digests(doc, "element")), before)

    def test_too_many_indices_compare_by_outcome_class(self):
        doc = load("golden-3.3.1.json")
        case = next(c for c in doc["slice"] if len(c["index"]) > 8 and "err" in c["expect"])
        before = timeline.case_digests(doc, "slice")[case["id"]]
        case["expect"]["err"]["message"] = "Index out of bounds (axis 17)"   # other memory past the struct
        self.assertEqual(timeline.case_digests(doc, "slice")[case["id"]], before)
        case["expect"] = {"crash": {"returncode": -11, "signal": 11}}
        self.assertNotEqual(timeline.case_digests(doc, "slice")[case["id"]], before)


class Bisection(Tmp):
    def test_each_change_is_placed_at_the_first_release_that_shows_it(self):
        results = self.results()
        doc = timeline.build_timeline(self.tmp, RELEASES, results)
        layout = {(c["row"], c["release"]): c for c in doc["changes"] if c["kind"] == "layout"}
        self.assertEqual(sorted(layout), sorted(EXPECTED_LAYOUT_CHANGES))
        for key, words in EXPECTED_LAYOUT_CHANGES.items():
            for w in words:
                self.assertIn(w, layout[key]["description"])
        behaviour = {(c["row"], c["release"]) for c in doc["changes"] if c["kind"] == "behaviour"}
        self.assertIn(("slice", "3.3.1"), behaviour)
        ch = next(c for c in doc["changes"] if (c["row"], c["release"]) == ("slice", "3.3.1"))
        self.assertEqual(ch["previous"], "3.2.9")
        self.assertEqual(ch["changed"], 2)
        self.assertEqual(ch["ids"], ["slice-o-02513", "slice-o-02698"])
        self.assertEqual([(t["outcomes"], t["cases"]) for t in ch["transitions"]],
                         [("err:IndexError -> crash", 1), ("err:IndexError -> err:IndexError", 1)])
        self.assertIn("Out of bounds on buffer access (axis 1)", ch["transitions"][1]["example"]["after"])

    def test_a_release_without_results_is_named_between(self):
        results = self.results()
        releases = ["0.29.37", "3.0.0a0", "3.1.8", "3.2.9", "3.3.1"]
        results["3.0.0a0"] = timeline.summarize("3.0.0a0", self.tmp + "/none", install_failed="error: no wheel")
        doc = timeline.build_timeline(None, releases, results)
        ch = next(c for c in doc["changes"] if c["row"] == "__pyx_memoryview_obj")
        self.assertEqual((ch["previous"], ch["release"], ch["untested_between"]), ("0.29.37", "3.1.8", ["3.0.0a0"]))
        self.assertEqual(doc["releases"][1]["status"], "install-failed")
        self.assertEqual(doc["releases"][1]["reason"], "error: no wheel")

    def test_no_change_no_entry(self):
        results = self.results(["3.3.1"])
        results["3.3.2"] = copy.deepcopy(results["3.3.1"])
        doc = timeline.build_timeline(None, ["3.3.1", "3.3.2"], results)
        self.assertEqual(doc["changes"], [])


class OldReleases(Tmp):
    def test_pure_python_install_and_tolerated_errors_are_noted(self):
        # an old release as ci/probe leaves it: installed by ensure_cy_venv's pure-Python
        # fallback, its C not compiling, its layouts read by extract_layouts
        # --tolerate-errors-outside-structs (the layout numbers of 0.29.37's fixture)
        layouts = load("layouts-0.29.37.json")
        layouts.update(cython_version="0.29.14", tolerated_errors=3,
                       tolerated_error_lines=["golden_core.c:1:1: error: x"])
        d = os.path.join(self.tmp, "0.29.14")
        os.makedirs(d)
        with open(os.path.join(d, "layouts.json"), "w") as f:
            json.dump(layouts, f)
        with open(os.path.join(d, "steps"), "w") as f:
            f.write("install=pure-python\nbuild=failed\nbuild_stage=c\n"
                    "build_reason=golden_core.c:208:12: fatal error: longintrepr.h: No such file or directory\n"
                    "layouts=ok\ngolden=skipped\ngolden_reason=the fixtures did not build\n")
        results = self.results(["0.29.37"])
        results["0.29.14"] = timeline.summarize("0.29.14", d)
        self.assertEqual((results["0.29.14"]["install"], results["0.29.14"]["layouts_tolerated"]), ("pure-python", 3))
        doc = timeline.build_timeline(None, ["0.29.14", "0.29.37"], results)
        old, new = doc["releases"]
        self.assertEqual(old["status"], "c-failed")
        self.assertEqual(len(old["notes"]), 2)
        self.assertIn("pure Python", old["notes"][0])
        self.assertIn("3 clang error(s) outside the structs", old["notes"][1])
        self.assertNotIn("notes", new)
        # the same layouts: no change between them
        self.assertEqual([c for c in doc["changes"] if c["kind"] == "layout"], [])
        md = timeline.render_markdown(doc)
        self.assertIn("3 clang error(s) outside the structs", md)
        self.assertIn("3 clang error(s) outside the structs", timeline.render_svg(doc))


class Findings(Tmp):
    def test_spans(self):
        order = ["a", "b", "c", "d", "e"]
        self.assertEqual(timeline.spans(order, {"a", "b", "d"}), [["a", "b"], ["d", "d"]])
        self.assertEqual(timeline.spans(order, set()), [])
        self.assertEqual(timeline.spans(order, set(order)), [["a", "e"]])

    def test_first_and_last_release_of_each_finding(self):
        results = self.results()
        doc = timeline.build_timeline(None, RELEASES, results)
        by_id = {f["id"]: f for f in doc["findings"]}
        for fid, f in by_id.items():
            have = [x for x in RELEASES if fid in results[x]["findings"]]
            self.assertEqual(f["releases"], have)
            self.assertEqual((f["first"], f["last"]), (have[0], have[-1]))
        self.assertEqual(sorted(by_id), sorted(set().union(*(results[x]["findings"] for x in RELEASES))))


class Svg(Tmp):
    def doc(self):
        return timeline.build_timeline(self.tmp, RELEASES, self.results())

    def test_well_formed_with_a_cell_per_row_and_run_of_equal_results(self):
        doc = self.doc()
        root = ET.fromstring(timeline.render_svg(doc))
        self.assertEqual(root.tag, SVG + "svg")
        cells = [r for r in root.iter(SVG + "rect") if r.find(SVG + "title") is not None]
        rows = timeline.row_values(doc)
        width = len(RELEASES) * timeline.CELL_W
        for kind, label, values in rows:
            mine = [c for c in cells if c.find(SVG + "title").text.startswith(label + ": ")]
            # the row's runs cover every release once
            self.assertEqual(sum(int(c.get("width")) for c in mine), width, label)
            if kind in ("layout", "check"):
                # one colour per distinct result
                self.assertEqual(len({c.get("fill") for c in mine}), len(timeline.distinct(values)), label)

    def test_committed_copies_match_their_generator(self):
        committed = os.path.join(ROOT, "docs")
        with open(os.path.join(committed, "timeline.json")) as f:
            doc = json.load(f)
        out = os.path.join(self.tmp, "out")
        timeline.render(doc, out)
        for name in ("timeline.md", "timeline.svg"):
            with open(os.path.join(committed, name)) as a, open(os.path.join(out, name)) as b:
                self.assertEqual(a.read(), b.read(), "docs/%s differs from ci/timeline.py render "
                                 "--json docs/timeline.json (regenerate it)" % name)
        with open(os.path.join(committed, "timeline.svg")) as f:
            ET.fromstring(f.read())


def png(width, rows, ctype=2):
    """A PNG (8-bit RGB or RGBA) of `rows` (lists of pixel tuples), each row with the filter
    type given first: (filter, [pixel, ...])."""
    bpp = 3 if ctype == 2 else 4
    raw = b""
    prev = bytes(width * bpp)
    for f, pixels in rows:
        line = bytes(v for p in pixels for v in p)
        enc = bytearray()
        for x in range(len(line)):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            pred = {0: 0, 1: a, 2: b, 3: (a + b) // 2}.get(f)
            if f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            enc.append((line[x] - pred) & 255)
        raw += bytes([f]) + bytes(enc)
        prev = line

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, len(rows), 8, ctype, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class Png(unittest.TestCase):
    def test_every_filter_type_decodes(self):
        pix = [[(10 * x + y, 200 - x, 3 * y) for x in range(5)] for y in range(5)]
        data = png(5, [(f, pix[f]) for f in range(5)])
        w, h, bpp, rows = timeline.png_pixels(data)
        self.assertEqual((w, h, bpp), (5, 5, 3))
        for y in range(5):
            self.assertEqual([tuple(rows[y][3 * x:3 * x + 3]) for x in range(5)], pix[y])
        self.assertEqual(len(timeline.png_colours(data)), 25)

    def test_rgba_and_blank(self):
        white = [(255, 255, 255, 255)] * 4
        data = png(4, [(4, white), (2, white)], ctype=6)
        self.assertEqual(timeline.png_colours(data), {(255, 255, 255)})


# The layout changes between the fixtures' releases, as the real extracted structs show them.
# (extracted by clang from each release's golden_core.c; ci/sweep's timeline shows them first in
# 3.0.0rc1, 3.1.0b1, 3.2.0b1 and 3.3.0a1).
EXPECTED_LAYOUT_CHANGES = {
    ("__pyx_memoryview_obj", "3.1.8"): ["size 168 -> 160", "`acquisition_count_aligned_p`", "removed",
                                        "`view` 72 -> 64", "-> const __Pyx_TypeInfo *"],
    ("__pyx_memoryviewslice_obj", "3.1.8"): ["size 400 -> 392", "`from_slice` 168 -> 160"],
    ("__Pyx_TypeInfo", "3.1.8"): ["field `fields`", "-> const struct __Pyx_StructField_ *"],
    ("__pyx_memoryview_obj", "3.2.9"): ["field `_unused` (void *) added at offset 40",
                                        "field `_array_interface` (PyObject *, offset 40) removed"],
    ("__pyx_memoryviewslice_obj", "3.3.1"): ["field `to_dtype_func`", "__pyx_memoryview_to_dtype_func_type"],
}

if __name__ == "__main__":
    unittest.main()
