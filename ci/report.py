#!/usr/bin/env python3
"""The compatibility report of ci/matrix (Python standard library only).

Four commands:

  ci/report.py golden-findings --golden crates/cyview/tests/golden [--extra FILE ...]
      Prints one `cyview-finding: {...}` line for each kind of finding recorded in the golden
      vectors (golden/cython.json, and each --extra FILE: the vectors `ci/gen-golden --python
      PY --out FILE` wrote for one build that is not a pinned release): cases whose result
      lies outside the source or its memory block, crashes, results of more than 8
      dimensions, compiler crashes. One line per kind, with the smallest case as reproducer.

  ci/report.py report --runs target/cyview-report/runs --out target/cyview-report \\
                      --release 3.3.1 [--release X ...] \\
                      [--golden-findings target/cyview-report/golden-findings.log] \\
                      [--wall-seconds N]
      Writes OUT/report.json and OUT/report.md from what ci/matrix left in RUNS, and prints a
      one-line summary. RUNS/<release>/ holds, per selected release:
        meta      key=value lines: status (passed | failed | skipped), reason, wall, cython,
                  venv_status, venv_s, build_status, build_s, test_status, test_s, passed,
                  failed (a missing or empty meta file: status "failed", with that reason);
                  the build's source: source (in words), source_kind (version | sdist |
                  wheel | checkout | patch), source_spec, source_path, source_sha256,
                  source_rev, source_version, source_sdist_sha256, source_patch,
                  source_patch_sha256, cython_compiled; its golden vectors: golden
                  ("committed", or the file generated for this build), golden_status, golden_s
        test.log  what `cargo test --workspace --no-fail-fast -- --nocapture` printed (may be
                  missing: the release was skipped or its build failed)
      The tests report on stdout, one JSON object a line (anywhere in a line):
        cyview-report: {"check": .., "release": .., "cases": N, "passed": N, "failed": N}
        cyview-finding: {"id": .., "kind": .., "release": .., "reproducer": .., "detail": ..}
      A check or finding belongs to the release it names ("release": "any": the run that
      printed it); duplicates are merged. The golden findings log is read the same way.

  ci/report.py merge --out target/cyview-report [--release X ...] DIR [DIR ...]
      Writes OUT/report.json and OUT/report.md as `report` does, from several ci/matrix output
      folders (each a target/cyview-report: runs/<release>/, golden-findings.log, report.json),
      e.g. the artifacts of one CI job per release. Every release of every DIR/runs/ is read
      (a release found in two folders is an error: exit 2 with both named); each --release X
      that no folder has is reported as failed ("its run left no record"). The wall time is
      the longest of the merged runs' (they ran side by side).

  ci/report.py same A/report.json B/report.json
      Whether two reports found the same: the same releases, statuses, tests passed and
      failed, checks and their counts, layout, findings. What only says where a build came
      from or how long it took is left out (each release's source, golden_vectors,
      wall_seconds and step seconds; the total wall time; generated_by, merged_from).
      Prints the differences, one a line, and exits 1 when there are any; else prints
      "same" and exits 0. E.g. ci/matrix --cython 3.3.1 against ci/matrix --cython
      cython-3.3.1.tar.gz.

Tests: ci/tests/test_report.py (python3 -m unittest discover -s ci/tests).
"""

import argparse
import json
import os
import re
import sys
from collections import defaultdict

MARKERS = ("cyview-report:", "cyview-finding:")
STEPS = ("venv", "build", "test")


def vkey(v):
    """Sort key of a release: numbers compare as numbers, other parts as text after them."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.]", v))


# ---------------------------------------------------------------- golden findings


def py_item(it):
    """One index item as Python subscript text."""
    if "i" in it:
        return str(it["i"])
    if "s" in it:
        a, b, c = it["s"]
        t = ("" if a is None else str(a)) + ":" + ("" if b is None else str(b))
        if c is not None:
            t += ":" + str(c)
        return t
    if "newaxis" in it:
        return "None"
    if "ellipsis" in it:
        return "..."
    return it["other"]


def py_item_expr(it):
    """One index item as a Python expression (for tuple arithmetic)."""
    if "s" in it:
        parts = ["None" if x is None else str(x) for x in it["s"]]
        while len(parts) > 1 and parts[-1] == "None":
            parts.pop()
        return "slice(%s)" % ", ".join(parts)
    return py_item(it)


def py_index(index, bare):
    """An index as the text between the brackets of a subscript (long repeats as tuple sums)."""
    if bare:
        return py_item(index[0])
    runs = []
    for it in index:
        if runs and runs[-1][0] == it:
            runs[-1][1] += 1
        else:
            runs.append([it, 1])
    if len(index) > 8 and any(n > 3 for _, n in runs):
        parts = ["(%s,)%s" % (py_item_expr(it), "" if n == 1 else " * %d" % n) for it, n in runs]
        return " + ".join(parts)
    text = ", ".join(py_item(it) for it in index)
    return text + "," if len(index) == 1 else text


def count_elements(s):
    n = 1
    for x in s["shape"]:
        n *= x
    return n


def plain_numpy(s):
    """A float64 NumPy view that as_strided over np.arange can make."""
    return (s["exporter"] == "numpy" and s["fill"] == "f8" and s["data"] % 8 == 0
            and s["memory_len"] % 8 == 0)


def plain_pil(s):
    """An unsliced _testbuffer.ndarray(..., flags=ND_PIL): what its constructor makes."""
    shape, nd = s["shape"], s["ndim"]
    if s["exporter"] != "_testbuffer" or s["fill"] != "f8" or s["format"] != "d" or count_elements(s) == 0:
        return False
    strides = [8] * nd
    for k in range(nd - 2, 0, -1):
        strides[k] = strides[k + 1] * shape[k + 1]
    return list(s["strides"]) == strides and list(s["suboffsets"]) == [0] + [-1] * (nd - 1)


def constructible(s):
    return plain_numpy(s) or plain_pil(s)


def source_lines(s):
    """Python lines that make the exporter `src`, or a comment describing it."""
    geo = "shape %s, strides %s, suboffsets %s" % (tuple(s["shape"]), tuple(s["strides"]), tuple(s["suboffsets"]))
    if plain_numpy(s):
        return [
            "import numpy as np",
            "from numpy.lib.stride_tricks import as_strided",
            "src = as_strided(np.arange(%d.0)[%d:], shape=%s, strides=%s)"
            % (s["memory_len"] // 8, s["data"] // 8, tuple(s["shape"]), tuple(s["strides"])),
        ]
    if plain_pil(s):
        flags = "ND_PIL" if s["readonly"] else "ND_PIL | ND_WRITABLE"
        return [
            "from _testbuffer import ndarray, ND_PIL, ND_WRITABLE  # CPython's test module",
            "src = ndarray([float(x) for x in range(%d)], shape=%s, format='d', flags=%s)"
            % (count_elements(s), list(s["shape"]), flags),
            "# a PIL-style (indirect) buffer: %s" % geo,
        ]
    if s["exporter"] == "_testbuffer":
        return ["# src: a PIL-style _testbuffer.ndarray(..., format='d', flags=ND_PIL) sliced to %s" % geo]
    return ["# src: a %s buffer: %s" % (s["exporter"], geo)]


def ints_of(index):
    """The sum of the absolute integers of an index (smaller reads easier)."""
    tot = 0
    for it in index:
        if "i" in it:
            tot += abs(it["i"])
        elif "s" in it:
            tot += sum(abs(x) for x in it["s"] if x is not None)
    return tot


def outcome(expect, source):
    """What Cython does with a case, in words."""
    k = next(iter(expect))
    v = expect[k]
    if k == "ok":
        rel = [None if e is None else e - source["data"] for e in v["elements"]]
        shown = rel[:8] + (["..."] if len(rel) > 8 else [])
        return ("Cython returns shape %s, strides %s, suboffsets %s; element byte offsets from src's "
                "first element: [%s]%s; src has %d elements"
                % (tuple(v["shape"]), tuple(v["strides"]), tuple(v["suboffsets"]),
                   ", ".join(str(x) if x is not None else "null" for x in shown),
                   " (null: read through a slot that is not a pointer)" if None in rel else "",
                   count_elements(source)))
    if k == "crash":
        return "the process dies (signal %s)" % v.get("signal")
    if k == "ub":
        return "Cython builds a %d-d result: shape/strides/suboffsets written past their 8 entries" % v["ndim"]
    return json.dumps(expect, sort_keys=True)


def reproducer(case, source, fn):
    """A .pyx and Python snippet that shows what Cython does with a golden case."""
    if case["path"] == "compiled":
        params = fn.get("params", [])
        head = ["# repro.pyx (cythonize -i repro.pyx; default directives: boundscheck, wraparound on)"]
        if "view." in fn["decl"]:
            head.append("from cython cimport view")
        head += ["def f(%s):" % ", ".join(["%s v" % fn["decl"]] + ["Py_ssize_t %s" % p for p in params]),
                 "    return %s" % fn["code"],
                 "",
                 "# Python"]
        # params are named a<k>, b<k>, c<k>, i<k> after the item position k
        args = []
        for p in params:
            kind, pos = p[0], int(p[1:])
            it = case["index"][pos]
            if kind == "i":
                args.append(str(it["i"]))
            else:
                args.append(str(it["s"]["abc".index(kind)]))
        call = "r = f(src%s)" % "".join(", " + a for a in args)
    else:
        nd = source["ndim"]
        head = ["# repro.pyx (cythonize -i repro.pyx)",
                "from cython cimport view",
                "def as_mv(double[%s] v):" % ", ".join(["::view.generic"] * nd),
                "    return v",
                "",
                "# Python"]
        call = "r = as_mv(src)[%s]" % py_index(case["index"], case.get("bare"))
    return "\n".join(head + source_lines(source) + [call, "# " + outcome(case["expect"], source)])


def case_findings(g, release):
    """The findings of one golden file's slice/element/transpose cases."""
    sources = g["sources"]
    fns = {f["name"]: f for f in g["functions"]}
    out_of_memory = set()
    for note in g.get("notes", []):
        if note.startswith("OUT OF MEMORY:"):
            out_of_memory |= set(re.findall(r"slice-[a-z]-\d+", note))
    groups = defaultdict(list)
    for cat in ("slice", "element", "transpose"):
        for case in g.get(cat, []):
            src = sources[case["source"]] if isinstance(case.get("source"), int) else None
            kind = next(iter(case["expect"]))
            indirect = src is not None and any(x >= 0 for x in src["suboffsets"])
            what = "indirect" if indirect else "direct"
            if case.get("outside_source"):
                groups[("outside-source", "%s-%s" % (case["path"], what))].append(case)
                if case["id"] in out_of_memory:
                    groups[("outside-memory", case["path"])].append(case)
            if kind in ("crash", "ub") and "index" in case:
                items = sorted({next(iter(it)) for it in case["index"]})
                label = "+".join({"i": "index", "s": "slice", "ellipsis": "ellipsis",
                                  "newaxis": "newaxis"}.get(x, x) for x in items)
                groups[("crash" if kind == "crash" else "ndim-overflow",
                        "%s-%s-items" % (case["path"], label))].append(case)
    out = []
    for (kind, sub), cases in sorted(groups.items()):
        # The representative: the smallest case, one that Python can construct if possible.
        rep = min(cases, key=lambda c: (sources[c["source"]]["ndim"], len(c["index"]),
                                        not constructible(sources[c["source"]]),
                                        ints_of(c["index"]), count_elements(sources[c["source"]]),
                                        c["id"]))
        src = sources[rep["source"]]
        path = "compiled" if rep["path"] == "compiled" else "Python-level (object)"
        patterns = len({(c.get("func") or json.dumps([next(iter(i)) for i in c["index"]])) for c in cases})
        text = {
            "outside-source": "%d %s %s cases on %s sources select an element that is not an element "
                              "of the source view (%d of them outside the memory block); %d index patterns"
                              % (len(cases), path, "slicing", sub.split("-")[-1],
                                 sum(c["id"] in out_of_memory for c in cases), patterns),
            "outside-memory": "%d %s slicing cases select an element outside the source's whole memory block"
                              % (len(cases), path),
            "crash": "%d %s indexing cases with more index items than 8 crash the interpreter"
                     % (len(cases), path),
            "ndim-overflow": "%d %s indexing cases build a result of more than 8 dimensions "
                             "(written past the 8-entry arrays of __Pyx_memviewslice)" % (len(cases), path),
        }[kind]
        text += "; ids: %s" % ", ".join(c["id"] for c in sorted(cases, key=lambda c: c["id"])[:5])
        if len(cases) > 5:
            text += ", ..."
        out.append({"id": "golden/%s/%s" % (kind, sub), "kind": kind, "release": release,
                    "reproducer": reproducer(rep, src, fns.get(rep.get("func"), {})), "detail": text})
    return out


def compiler_crash_findings(g, release):
    """The findings of one golden file's compile probes on which the compiler itself crashed."""
    crashes = defaultdict(list)
    for p in g.get("compile", []):
        err = p["expect"].get("err", {})
        if "cause" in err or "Compiler crash" in err.get("message", ""):
            crashes[(err.get("message", ""), err.get("cause", ""))].append(p)
    out = []
    for (message, cause), probes in sorted(crashes.items()):
        rep = min(probes, key=lambda p: (p.get("ndim", 0), len(p["code"]), p["id"]))
        params = sorted(set(re.findall(r"\b([abci]\d+)\b", rep["code"])), key=lambda x: (x[1:], x[0]))
        code = ["# repro.pyx; cythonize repro.pyx"]
        if "view." in rep["decl"]:
            code.append("from cython cimport view")
        code += ["def f(%s):" % ", ".join(["%s v" % rep["decl"]] + ["Py_ssize_t %s" % p for p in params]),
                 "    return %s" % rep["code"],
                 "# -> CompileError: %s%s" % (message, " (%s)" % cause if cause else "")]
        slug = re.sub(r"[^a-z0-9]+", "-", (message.split(" in ")[-1] + " " + cause.split(":")[0]).lower()).strip("-")
        out.append({"id": "golden/compiler-crash/%s" % slug, "kind": "compiler-crash", "release": release,
                    "reproducer": "\n".join(code),
                    "detail": "The compiler crashes on %d probes: %s" % (
                        len(probes), ", ".join("`%s` on `%s`" % (p["code"], p["decl"])
                                               for p in sorted(probes, key=lambda p: p["id"])))})
    return out


def golden_findings(golden_dir, extra=()):
    """The findings recorded in golden_dir/cython.json (the merged golden vectors of every
    pinned release), release by release, oldest first; then those of each extra file (the
    vectors of one build, as golden_run.py writes them; its release is its "cython")."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                    "cython_fixtures", "golden"))
    import releases  # cython_fixtures/golden/releases.py: one release of the merged file

    merged = releases.load(os.path.join(golden_dir, "cython.json"))
    docs = [(releases.split(merged, release), release) for release in merged["releases"]]
    for path in extra:
        with open(path) as f:
            g = json.load(f)
        docs.append((g, str(g["cython"])))
    out = []
    for g, release in docs:
        out += case_findings(g, release)
        out += compiler_crash_findings(g, release)
    return out


def finding_line(finding):
    return "cyview-finding: " + json.dumps(finding, sort_keys=True)


# ---------------------------------------------------------------- report


def parse_lines(path):
    """The report and finding objects of a log, and the number of marked lines not parsed."""
    reports, findings, bad = [], [], 0
    dec = json.JSONDecoder()
    with open(path, errors="replace") as f:
        for line in f:
            for marker in MARKERS:
                i = line.find(marker)
                if i < 0:
                    continue
                rest = line[i + len(marker):].lstrip()
                try:
                    obj, _ = dec.raw_decode(rest)
                except ValueError:
                    bad += 1
                    continue
                (reports if marker == MARKERS[0] else findings).append(obj)
    return reports, findings, bad


def read_meta(path):
    """The key=value lines of a run's meta file (empty when it is missing)."""
    meta = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                meta[k] = v
    return meta


def fmt_s(s):
    s = int(s)
    return "%dm %02ds" % (s // 60, s % 60) if s >= 60 else "%ds" % s


def md_cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


class Collected:
    """What the runs of the selected releases (and the golden findings log) reported."""

    def __init__(self):
        self.checks = {}    # (release, check) -> {(cases, passed, failed) -> set(run releases)}
        self.findings = {}  # (id, kind, reproducer) -> {release -> detail}
        self.malformed = 0  # marked lines that did not parse
        self.runs = {}      # run release -> meta

    def add_log(self, path, run):
        """Adds what a test log reports; run is the release of the run that printed it."""
        reps, finds, bad = parse_lines(path)
        self.malformed += bad
        for c in reps:
            # A release-independent check ("release": "any", e.g. the pure-Rust fuzz suite)
            # belongs to the run that printed it.
            rel = str(c.get("release", run))
            key = (run if rel == "any" else rel, str(c.get("check", "?")))
            res = (int(c.get("cases", 0)), int(c.get("passed", 0)), int(c.get("failed", 0)))
            self.checks.setdefault(key, {}).setdefault(res, set()).add(run)
        for fd in finds:
            fkey = (str(fd.get("id", "?")), str(fd.get("kind", "?")), str(fd.get("reproducer", "")))
            self.findings.setdefault(fkey, {})[str(fd.get("release", run))] = str(fd.get("detail", ""))

    def add_golden_log(self, path):
        """Adds the findings of a golden-findings log (each names its release)."""
        _, finds, bad = parse_lines(path)
        self.malformed += bad
        for fd in finds:
            fkey = (fd["id"], fd["kind"], fd["reproducer"])
            self.findings.setdefault(fkey, {})[fd["release"]] = fd["detail"]


def collect(runs_dir, releases, golden_log=None):
    """Reads RUNS/<release>/{meta,test.log} of each release, and the golden findings log."""
    return collect_runs({r: runs_dir for r in releases}, [golden_log] if golden_log else [])


def collect_runs(runs_of, golden_logs):
    """Reads <runs folder>/<release>/{meta,test.log} of each release (runs_of: release -> its
    runs folder, or None: no run recorded), and each golden findings log that exists."""
    col = Collected()
    for r, runs_dir in runs_of.items():
        if runs_dir is None:
            col.runs[r] = {}
            continue
        col.runs[r] = read_meta(os.path.join(runs_dir, r, "meta"))
        log = os.path.join(runs_dir, r, "test.log")
        if os.path.exists(log):
            col.add_log(log, r)
    for golden_log in golden_logs:
        if os.path.exists(golden_log):
            col.add_golden_log(golden_log)
    return col


def release_object(r, meta, col):
    """The report.json object of one release (meta None: not run)."""
    if meta is None:
        obj = {"release": r, "status": "not run",
               "reason": "not selected for this run; its checks/findings were reported by the tests of other runs "
                         "from recorded data"}
    else:
        obj = {"release": r, "status": meta.get("status", "failed")}
        if meta.get("reason"):
            obj["reason"] = meta["reason"]
        elif not meta:
            obj["reason"] = "its run left no record (no meta file, or an empty one)"
        obj["wall_seconds"] = int(meta.get("wall", 0))
        obj["steps"] = {s: {"status": meta.get(s + "_status", "not run"), "seconds": int(meta.get(s + "_s", 0))}
                        for s in STEPS}
        if meta.get("cython"):
            obj["cython"] = meta["cython"]
        source = source_object(meta)
        if source:
            obj["source"] = source
        if meta.get("golden"):
            gv = {"from": "committed" if meta["golden"] == "committed" else "this build"}
            if meta["golden"] != "committed":
                gv.update({"path": meta["golden"], "status": meta.get("golden_status", "not run"),
                           "seconds": int(meta.get("golden_s", 0))})
            obj["golden_vectors"] = gv
        if "passed" in meta:
            obj["tests"] = {"passed": int(meta["passed"]), "failed": int(meta["failed"])}
    cl = []
    for (rel, name) in sorted(k for k in col.checks if k[0] == r):
        variants = col.checks[(rel, name)]
        for res in sorted(variants):
            entry = {"check": name, "cases": res[0], "passed": res[1], "failed": res[2]}
            if len(variants) > 1:
                entry["reported_in_runs"] = sorted(variants[res], key=vkey)
            cl.append(entry)
    obj["checks"] = cl
    lay = [c for c in cl if c["check"].startswith("layout:")]
    if lay:
        obj["layout"] = {"checks": len(lay), "cases": sum(c["cases"] for c in lay),
                         "passed": sum(c["passed"] for c in lay), "failed": sum(c["failed"] for c in lay)}
    obj["findings"] = sum(1 for d in col.findings.values() if r in d)
    return obj


SOURCE_KEYS = ("kind", "spec", "path", "sha256", "rev", "version", "sdist_sha256", "patch", "patch_sha256")


def source_object(meta):
    """Where a run's Cython came from (the meta's source_* keys), or None when not recorded."""
    src = {k: meta["source_" + k] for k in SOURCE_KEYS if meta.get("source_" + k)}
    if meta.get("source"):
        src["label"] = meta["source"]
    if meta.get("cython_compiled") in ("true", "false"):
        src["cython_compiled"] = meta["cython_compiled"] == "true"
    return src or None


def build_report(col, releases, total_wall):
    """The report.json document."""
    releases = sorted(releases, key=vkey)
    named = {rel for rel, _ in col.checks} | {rel for d in col.findings.values() for rel in d}
    all_releases = sorted(set(releases) | named, key=vkey)
    rel_objs = [release_object(r, col.runs.get(r), col) for r in all_releases]

    find_objs = []
    for (fid, kind, repro), per in sorted(col.findings.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])):
        rels = sorted(per, key=vkey)
        fo = {"id": fid, "kind": kind, "releases": rels, "reproducer": repro}
        if len(set(per.values())) == 1:
            fo["detail"] = per[rels[0]]
        else:
            fo["details"] = {x: per[x] for x in rels}
        find_objs.append(fo)

    layout_names = sorted({name for (_, name) in col.checks if name.startswith("layout:")})
    doc = {
        "generated_by": "ci/matrix",
        "releases_selected": releases,
        "wall_seconds": total_wall,
        "releases": rel_objs,
        "layout": {name: {r: next(({"cases": c["cases"], "passed": c["passed"], "failed": c["failed"]}
                                   for c in o["checks"] if c["check"] == name), None)
                          for o in rel_objs for r in [o["release"]]}
                   for name in layout_names},
        "findings": find_objs,
    }
    if col.malformed:
        doc["malformed_report_lines"] = col.malformed
    return doc


def check_cell(o, name):
    """A cell of the checks table: passed/cases of a check in one release, or a dash."""
    cs = [c for c in o["checks"] if c["check"] == name]
    if not cs:
        return "-"
    return " / ".join(("%d/%d" % (c["passed"], c["cases"])) +
                      (" (**%d failed**)" % c["failed"] if c["failed"] else "") for c in cs)


def render_markdown(doc):
    """report.md from the report.json document, as a list of lines."""
    rel_objs, find_objs = doc["releases"], doc["findings"]
    if doc.get("merged_from"):
        n = doc["merged_from"]
        origin = ("Merged by `ci/report.py merge` from %d `ci/matrix` run%s for Cython %s (the longest run's "
                  "wall time %s)." % (n, "" if n == 1 else "s", ", ".join(doc["releases_selected"]),
                                      fmt_s(doc["wall_seconds"])))
    else:
        origin = ("Generated by `ci/matrix` for Cython %s (total wall time %s)."
                  % (", ".join(doc["releases_selected"]), fmt_s(doc["wall_seconds"])))
    md = ["# cyview compatibility report", "",
          origin + " Checks and findings are attributed to the release they name.", "",
          "## Releases", "",
          "| Cython | status | wall time | tests passed | tests failed | checks | cases | failed cases | findings |",
          "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for o in rel_objs:
        status = o["status"] + (": " + o["reason"] if o.get("reason") else "")
        t = o.get("tests", {})
        md.append("| %s | %s | %s | %s | %s | %d | %d | %d | %d |" % (
            o["release"], md_cell(status), fmt_s(o["wall_seconds"]) if "wall_seconds" in o else "-",
            t.get("passed", "-"), t.get("failed", "-"), len(o["checks"]),
            sum(c["cases"] for c in o["checks"]), sum(c["failed"] for c in o["checks"]), o["findings"]))
    sourced = [o for o in rel_objs if o.get("source") or o.get("golden_vectors")]
    if sourced:
        md += ["", "## Sources", "",
               "| Cython | version | source | Cython compiled | golden vectors |", "|---|---|---|---|---|"]
        for o in sourced:
            src, gv = o.get("source", {}), o.get("golden_vectors", {})
            compiled = {True: "yes", False: "no (pure Python)"}.get(src.get("cython_compiled"), "-")
            golden = "-"
            if gv.get("from") == "committed":
                golden = "committed (tests/golden/cython.json)"
            elif gv:
                golden = "generated from this build: %s (%s, %s)" % (gv["path"], gv["status"], fmt_s(gv["seconds"]))
            md.append("| %s | %s | %s | %s | %s |" % (o["release"], o.get("cython", "-"),
                                                      md_cell(src.get("label", src.get("spec", "-"))),
                                                      compiled, md_cell(golden)))
    md += ["", "## Checks", ""]
    names = sorted({c["check"] for o in rel_objs for c in o["checks"]})
    if not names:
        md.append("No test printed a `cyview-report:` line.")
    else:
        md.append("Cases passed / compared, per release (a dash: not reported for that release).")
        md.append("")
        md.append("| check | " + " | ".join(o["release"] for o in rel_objs) + " |")
        md.append("|---|" + "---:|" * len(rel_objs))
        for name in names:
            md.append("| %s | %s |" % (md_cell(name), " | ".join(check_cell(o, name) for o in rel_objs)))
    if doc["layout"]:
        md += ["", "## Layout", "",
               "| release | layout checks | cases | passed | failed |", "|---|---:|---:|---:|---:|"]
        for o in rel_objs:
            if "layout" in o:
                lay = o["layout"]
                md.append("| %s | %d | %d | %d | %d |" % (o["release"], lay["checks"], lay["cases"],
                                                          lay["passed"], lay["failed"]))
    md += ["", "## Findings", ""]
    if not find_objs:
        md.append("None reported.")
    else:
        md += ["| id | kind | releases |", "|---|---|---|"]
        for fo in find_objs:
            md.append("| `%s` | %s | %s |" % (md_cell(fo["id"]), fo["kind"], ", ".join(fo["releases"])))
        for fo in find_objs:
            md += ["", "### `%s`" % fo["id"], "",
                   "Kind: %s. Releases: %s." % (fo["kind"], ", ".join(fo["releases"])), ""]
            if "detail" in fo:
                md.append(fo["detail"])
            else:
                for x, d in fo["details"].items():
                    md.append("* %s: %s" % (x, d))
            md += ["", "```python", fo["reproducer"], "```"]
    if doc.get("malformed_report_lines"):
        md += ["", "%d report lines could not be parsed." % doc["malformed_report_lines"]]
    return md


def summary_line(doc, col):
    rel_objs = doc["releases"]
    failed = [o["release"] for o in rel_objs if o["status"] == "failed"]
    skipped = [o["release"] for o in rel_objs if o["status"] == "skipped"]
    return "%s: %d releases, %d checks, %d findings; failed: %s; skipped: %s" % (
        doc["generated_by"], len(doc["releases_selected"]), len(col.checks), len(doc["findings"]),
        ", ".join(failed) or "none", ", ".join(skipped) or "none")


def write_report(runs_dir, out_dir, releases, golden_log=None, total_wall=0):
    """Writes out_dir/report.json and report.md; returns the summary line."""
    col = collect(runs_dir, releases, golden_log)
    return write_doc(out_dir, build_report(col, releases, total_wall), col)


class MergeError(Exception):
    """Report folders that cannot be merged (the message says why)."""


def merge_sources(dirs):
    """The runs of several ci/matrix output folders: (release -> its runs folder, the golden
    findings logs, the longest wall time)."""
    runs_of, golden_logs, wall = {}, [], 0
    for d in dirs:
        runs_dir = os.path.join(d, "runs")
        if not os.path.isdir(runs_dir):
            raise MergeError("%s has no runs/ folder: give the folders ci/matrix writes "
                             "(target/cyview-report)" % d)
        walls = []
        for r in sorted(os.listdir(runs_dir), key=vkey):
            if not os.path.isdir(os.path.join(runs_dir, r)):
                continue
            if r in runs_of:
                raise MergeError("Cython %s was run in both %s and %s: merge one run of each release"
                                 % (r, os.path.dirname(runs_of[r]), d))
            runs_of[r] = runs_dir
            walls.append(int(read_meta(os.path.join(runs_dir, r, "meta")).get("wall", 0) or 0))
        golden_logs.append(os.path.join(d, "golden-findings.log"))
        try:
            with open(os.path.join(d, "report.json")) as f:
                run_wall = int(json.load(f).get("wall_seconds", 0))
        except (OSError, ValueError):
            run_wall = sum(walls)  # the run stopped before its report: its releases' own times
        wall = max(wall, run_wall)
    return runs_of, golden_logs, wall


def merge_reports(dirs, out_dir, releases=()):
    """Writes out_dir/report.json and report.md from several ci/matrix output folders (and the
    releases named though no folder has them); returns the summary line."""
    runs_of, golden_logs, wall = merge_sources(dirs)
    for r in releases:
        runs_of.setdefault(r, None)  # no folder has its run: "its run left no record"
    col = collect_runs(runs_of, golden_logs)
    doc = build_report(col, list(runs_of), wall)
    doc["generated_by"] = "ci/report.py merge"
    doc["merged_from"] = len(dirs)
    return write_doc(out_dir, doc, col)


def write_doc(out_dir, doc, col):
    """Writes the report.json document and its report.md to out_dir; returns the summary line."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(doc, f, indent=2, sort_keys=False)
        f.write("\n")
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(render_markdown(doc)) + "\n")
    return summary_line(doc, col)


# ---------------------------------------------------------------- same


# What `same` leaves out: where a build came from and how long things took.
SAME_IGNORED_TOP = ("wall_seconds", "generated_by", "merged_from")
SAME_IGNORED_RELEASE = ("source", "golden_vectors", "wall_seconds")
# Lists of objects compared member by member, keyed by these fields.
SAME_LIST_KEYS = ("release", "id", "check")


def same_view(doc):
    """The report without what `same` leaves out."""
    doc = json.loads(json.dumps(doc))
    for k in SAME_IGNORED_TOP:
        doc.pop(k, None)
    for o in doc.get("releases", []):
        for k in SAME_IGNORED_RELEASE:
            o.pop(k, None)
        for step in o.get("steps", {}).values():
            step.pop("seconds", None)
    return doc


def keyed(items):
    """A list of objects as {key: object} when each has one of SAME_LIST_KEYS, else None."""
    if not items or not all(isinstance(x, dict) for x in items):
        return None
    for field in SAME_LIST_KEYS:
        if all(field in x for x in items):
            out = {}
            for x in items:
                k, n = str(x[field]), 2
                while k in out:  # a check reported with two results: keep both
                    k = "%s#%d" % (x[field], n)
                    n += 1
                out[k] = x
            return out
    return None


def differences(a, b, path=""):
    """The differences between two JSON values, one line each."""
    if isinstance(a, list) and isinstance(b, list):
        ka, kb = keyed(a), keyed(b)
        if ka is not None and kb is not None:
            a, b = ka, kb
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            p = "%s/%s" % (path, k)
            if k not in a:
                out.append("%s: only in B: %s" % (p, json.dumps(b[k], sort_keys=True)[:300]))
            elif k not in b:
                out.append("%s: only in A: %s" % (p, json.dumps(a[k], sort_keys=True)[:300]))
            else:
                out += differences(a[k], b[k], p)
        return out
    if a != b:
        return ["%s: A %s, B %s" % (path or "/", json.dumps(a, sort_keys=True)[:300],
                                   json.dumps(b, sort_keys=True)[:300])]
    return []


def same_reports(path_a, path_b):
    """The differences between two report.json files, leaving out source and timing."""
    with open(path_a) as f:
        a = json.load(f)
    with open(path_b) as f:
        b = json.load(f)
    return differences(same_view(a), same_view(b))


# ---------------------------------------------------------------- command line


def main(argv=None):
    ap = argparse.ArgumentParser(prog="ci/report.py", description="The compatibility report of ci/matrix.")
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("golden-findings", help="print the findings recorded in the golden vectors")
    g.add_argument("--golden", required=True, metavar="DIR", help="the folder of cython.json")
    g.add_argument("--extra", action="append", default=[], metavar="FILE",
                   help="the golden vectors of one build that is not a pinned release (repeatable)")
    r = sub.add_parser("report", help="write report.json and report.md")
    r.add_argument("--runs", required=True, metavar="DIR", help="ci/matrix's runs folder (<release>/meta, test.log)")
    r.add_argument("--out", required=True, metavar="DIR", help="where report.json and report.md go")
    r.add_argument("--release", required=True, action="append", dest="releases", metavar="X",
                   help="a release selected for this run (repeat for each)")
    r.add_argument("--golden-findings", metavar="LOG", help="the output of golden-findings (ignored if missing)")
    r.add_argument("--wall-seconds", type=int, default=0, metavar="N", help="the run's total wall time")
    m = sub.add_parser("merge", help="write report.json and report.md from several ci/matrix output folders")
    m.add_argument("--out", required=True, metavar="DIR", help="where report.json and report.md go")
    m.add_argument("--release", action="append", dest="releases", default=[], metavar="X",
                   help="a release expected in the merge (reported as failed when no folder has it)")
    m.add_argument("dirs", nargs="+", metavar="DIR", help="a folder ci/matrix wrote (runs/, golden-findings.log)")
    c = sub.add_parser("same", help="whether two reports found the same (source and timing left out)")
    c.add_argument("a", metavar="A", help="a report.json")
    c.add_argument("b", metavar="B", help="another report.json")
    args = ap.parse_args(argv)
    if args.command == "golden-findings":
        for f in golden_findings(args.golden, args.extra):
            print(finding_line(f))
    elif args.command == "same":
        try:
            diffs = same_reports(args.a, args.b)
        except (OSError, ValueError) as e:
            print("ci/report.py same: %s" % e, file=sys.stderr)
            return 2
        for d in diffs:
            print(d)
        if diffs:
            print("%d differences (A: %s, B: %s)" % (len(diffs), args.a, args.b))
            return 1
        print("same (A: %s, B: %s; source and timing left out)" % (args.a, args.b))
    elif args.command == "merge":
        try:
            print(merge_reports(args.dirs, args.out, args.releases))
        except MergeError as e:
            print("ci/report.py merge: %s" % e, file=sys.stderr)
            return 2
    else:
        print(write_report(args.runs, args.out, args.releases, args.golden_findings, args.wall_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
