#!/usr/bin/env python3
"""The ABI timeline of ci/sweep: every Cython release's memoryview layouts, golden behaviour
and findings, side by side (Python standard library only).

Commands:

  ci/timeline.py releases [--min 0.20]
      Every Cython release on PyPI from --min on, pre-releases included, oldest first (PEP 440
      order), one a line: asks the package client (`python -m pip index versions cython --pre`,
      run with this interpreter, which needs pip).

  ci/timeline.py summarize --label X --dir DIR [--install-failed REASON]
      DIR/result.json from what ci/probe left in DIR (steps, layouts.json, golden.json): a
      digest per struct layout and per golden category, a digest per case, the findings of
      ci/report.py's case_findings and compiler_crash_findings, the build status and reason.
      With --install-failed: a result that says the release could not be installed, and why.
      A release installed as pure Python (steps: install=pure-python) or whose layouts were
      read from C with errors outside the structs (layouts.json: tolerated_errors) gets a
      note in the timeline (release_notes).

  ci/timeline.py build --sweep DIR --out OUT [--wall-seconds N] [--jobs N] X [X ...]
      OUT/timeline.json, timeline.md, timeline.svg from DIR/X/result.json of the releases X
      (oldest first): every change of a layout or of a golden category bisected to the first
      release that shows it and described (fields, cases, the smallest changed case, read from
      DIR/X/golden.json), every finding with the releases it affects.

  ci/timeline.py render --json FILE --out DIR
      DIR/timeline.md and DIR/timeline.svg from a timeline.json alone (the committed copies in
      docs/ are checked against this by ci/tests/test_timeline.py).

  ci/timeline.py check-svg --svg FILE --png FILE [--chromium PROG]
      Renders the SVG with headless Chromium and fails unless the screenshot shows the
      timeline: a decoded PNG with the legend's colours in it (not blank).

Tests: ci/tests/test_timeline.py.
"""

import argparse
import hashlib
import html
import json
import os
import re
import struct
import subprocess
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# The golden categories in the order the timeline shows them (golden_run.py's document).
CATEGORIES = ("slice", "element", "transpose", "contig", "validate", "copy", "compile")
STRUCTS = ("__Pyx_memviewslice", "__pyx_memoryview_obj", "__pyx_memoryviewslice_obj", "__Pyx_TypeInfo")
DIGEST_LEN = 12


# ------------------------------------------------------------------ versions

_VERSION = re.compile(r"^(\d+(?:\.\d+)*)(?:(a|b|rc)(\d+))?(?:\.post(\d+))?$")


def version_key(v):
    """A PEP 440 sort key for the version forms Cython uses: 3.0.0, 0.29, 3.1.0rc2, 3.0.0b1,
    0.9.8.1.1 (a release sorts after its pre-releases)."""
    m = _VERSION.match(v)
    if not m:
        raise ValueError("not a release version: %r" % v)
    nums = [int(x) for x in m.group(1).split(".")]
    while len(nums) > 1 and nums[-1] == 0:
        nums.pop()
    pre = ({"a": 0, "b": 1, "rc": 2}[m.group(2)], int(m.group(3))) if m.group(2) else (3, 0)
    return (tuple(nums), pre, int(m.group(4) or 0))


def parse_pip_versions(text):
    """The versions of `pip index versions` output ("Available versions: 3.3.1, 3.3.0, ...")."""
    for line in text.splitlines():
        if line.startswith("Available versions:"):
            return [v.strip() for v in line.split(":", 1)[1].split(",") if v.strip()]
    raise ValueError("no 'Available versions:' line in pip's output")


def select_releases(versions, minimum):
    low = version_key(minimum)
    return sorted({v for v in versions if version_key(v) >= low}, key=version_key)


# ------------------------------------------------------------------- digests


def canonical(o):
    return json.dumps(o, sort_keys=True, separators=(",", ":"))


def digest(o):
    return hashlib.sha256(canonical(o).encode()).hexdigest()[:DIGEST_LEN]


def struct_key(s):
    """A struct layout without what names the release: size, alignment, fields."""
    return {"size": s["size"], "align": s["align"],
            "fields": [[f["name"], f["c_type"], f["offset"], f["size"]] for f in s["fields"]]}


def layout_digests(layouts):
    """name -> (digest, struct_key) for each struct of a cyview-build layouts.json document."""
    return {s["name"]: (digest(struct_key(s)), struct_key(s)) for s in layouts["structs"]}


def outcome_class(expect):
    """ok, ub, crash or the exception's type: what a case with too many indices is compared by."""
    k = next(iter(expect))
    return k if k != "err" else "err:" + expect["err"]["kind"]


def resolved_case(case, doc):
    """A golden case with its source indices replaced by the sources and its function name by
    the function record: what it says does not depend on how one release's document numbers
    its sources. The id is left out (it is the key). A case with more than 8 index items makes
    Cython read (and write) past the 8-entry arrays of __Pyx_memviewslice: what it then does
    depends on the memory there, so only its outcome class counts (ok, ub, crash, the
    exception's type)."""
    c = {k: v for k, v in case.items() if k != "id"}
    if len(c.get("index") or []) > 8 and "expect" in c:
        c["expect"] = outcome_class(c["expect"])
    for key in ("source", "dst", "src"):
        if isinstance(c.get(key), int):
            c[key] = doc["sources"][c[key]]
    if "func" in c:
        fns = {f["name"]: f for f in doc.get("functions", [])}
        c["func"] = fns.get(c["func"], c["func"])
    return c


def case_digests(doc, category):
    """id -> digest of each case of a category."""
    return {c["id"]: digest(resolved_case(c, doc)) for c in doc.get(category, [])}


def category_digest(cases):
    """The behaviour digest of a category: of its cases' ids and digests."""
    return digest(sorted(cases.items()))


# ----------------------------------------------------------------- summarize


def read_steps(path):
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    out[k] = v
    return out


def report_module():
    sys.path.insert(0, HERE)
    import report  # ci/report.py: case_findings, compiler_crash_findings
    return report


def findings_of(doc, label):
    rep = report_module()
    out = {}
    for f in rep.case_findings(doc, label) + rep.compiler_crash_findings(doc, label):
        out[f["id"]] = {"kind": f["kind"], "detail": f["detail"], "reproducer": f["reproducer"]}
    return out


def first_error_line(path, d):
    """The first line of a log that names an error (clang's diagnostics begin with warnings),
    without the probe folder's path, or None."""
    if not os.path.exists(path):
        return None
    with open(path, errors="replace") as f:
        for line in f:
            if re.search(r"\b(fatal )?error:", line):
                return line.strip().replace(os.path.abspath(d) + "/", "").replace(d.rstrip("/") + "/", "")[:300]
    return None


def summarize(label, d, install_failed=None):
    """The result of one probed release (see the module docstring)."""
    steps = read_steps(os.path.join(d, "steps"))
    res = {"label": label, "steps": steps, "layouts": {}, "checks": {}, "findings": {}}
    if install_failed is not None:
        res.update(status="install-failed", reason=install_failed)
        return res
    if steps.get("install") == "pure-python":   # ensure_cy_venv's fallback
        res["install"] = "pure-python"
    if steps.get("build") == "ok":
        res.update(status="ok", reason="")
    elif steps.get("build_stage") == "cython":
        res.update(status="cython-failed", reason=steps.get("build_reason", ""))
    else:
        res.update(status="c-failed", reason=steps.get("build_reason", ""))
    lp = os.path.join(d, "layouts.json")
    if steps.get("layouts") == "ok" and os.path.exists(lp):
        with open(lp) as f:
            lay = json.load(f)
        res["cython"] = lay["cython_version"]
        res["python"] = lay["python_version"]
        if "tolerated_errors" in lay:   # extract_layouts --tolerate-errors-outside-structs
            res["layouts_tolerated"] = lay["tolerated_errors"]
        for name, (dg, key) in layout_digests(lay).items():
            res["layouts"][name] = {"digest": dg, "layout": key}
    elif steps.get("layouts_reason"):
        res["layouts_reason"] = first_error_line(os.path.join(d, "layouts.log"), d) or steps["layouts_reason"]
    gp = os.path.join(d, "golden.json")
    if steps.get("golden") == "ok" and os.path.exists(gp):
        with open(gp) as f:
            doc = json.load(f)
        res["cython"] = doc["cython"]
        res["python"] = doc["python"]
        for cat in CATEGORIES:
            if doc.get(cat):
                cases = case_digests(doc, cat)
                res["checks"][cat] = {"digest": category_digest(cases), "cases": cases}
        res["findings"] = findings_of(doc, label)
    elif steps.get("golden_reason"):
        res["golden_reason"] = steps["golden_reason"]
    return res


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------- build


def layout_change(old, new):
    """In words: how struct layout `new` differs from `old` (struct_key dicts)."""
    parts = []
    if old["size"] != new["size"]:
        parts.append("size %d -> %d" % (old["size"], new["size"]))
    if old["align"] != new["align"]:
        parts.append("align %d -> %d" % (old["align"], new["align"]))
    of = {f[0]: f for f in old["fields"]}
    nf = {f[0]: f for f in new["fields"]}
    for f in new["fields"]:
        if f[0] not in of:
            parts.append("field `%s` (%s) added at offset %d" % (f[0], f[1], f[2]))
    for f in old["fields"]:
        if f[0] not in nf:
            parts.append("field `%s` (%s, offset %d) removed" % (f[0], f[1], f[2]))
    moved = [(f, nf[f[0]]) for f in old["fields"] if f[0] in nf and f[2] != nf[f[0]][2]]
    if moved:
        shown = ", ".join("`%s` %d -> %d" % (a[0], a[2], b[2]) for a, b in moved[:6])
        parts.append("%d field(s) moved: %s%s" % (len(moved), shown, ", ..." if len(moved) > 6 else ""))
    for f in old["fields"]:
        g = nf.get(f[0])
        if g and (g[1] != f[1] or g[3] != f[3]):
            parts.append("field `%s`: %s (%d bytes) -> %s (%d bytes)" % (f[0], f[1], f[3], g[1], g[3]))
    if [f[0] for f in old["fields"] if f[0] in nf] != [f[0] for f in new["fields"] if f[0] in of]:
        parts.append("fields reordered")
    return "; ".join(parts) or "same fields, offsets and sizes (a C type spelling changed)"


def short_case(case, doc):
    """A one-line statement of a golden case: what was asked (index or code, on which
    function or source) and what Cython did."""
    asked = []
    if case.get("func"):
        fn = {f["name"]: f for f in doc.get("functions", [])}.get(case["func"], {})
        asked.append("%s `%s` on `%s`" % (case["func"], fn.get("code", case.get("code", "")), fn.get("decl", "")))
    elif case.get("code"):
        asked.append("`%s`" % case["code"])
    if "index" in case:
        asked.append("`v[%s]`" % report_module().py_index(case["index"], case.get("bare")))
    if "source" in case and isinstance(case["source"], int):
        s = doc["sources"][case["source"]]
        asked.append("source %s shape %s strides %s suboffsets %s" % (
            s.get("exporter"), s.get("shape"), s.get("strides"), s.get("suboffsets")))
    if case.get("decl") and not case.get("func"):
        asked.append("decl `%s`" % case["decl"])
    return "; ".join(asked)


def outcome_text(expect, limit=300):
    t = canonical(expect)
    return t if len(t) <= limit else t[:limit] + "..."


def load_golden(sweep, release):
    p = os.path.join(sweep, release, "golden.json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def behaviour_change(cat, old_cases, new_cases, old_doc, new_doc):
    """What changed in a golden category between two releases: counts, the first ids and the
    smallest changed case with both outcomes."""
    changed = sorted(i for i in old_cases if i in new_cases and old_cases[i] != new_cases[i])
    added = sorted(set(new_cases) - set(old_cases))
    removed = sorted(set(old_cases) - set(new_cases))
    ch = {"changed": len(changed), "added": len(added), "removed": len(removed),
          "ids": (changed + added + removed)[:8]}
    if changed and old_doc is not None and new_doc is not None:
        before = {c["id"]: c for c in old_doc.get(cat, [])}
        after = {c["id"]: c for c in new_doc.get(cat, [])}
        cand = [i for i in changed if i in before and i in after]
        # the changed cases grouped by how their outcome changed (ok, ub, crash, the
        # exception's type), largest group first, each with its smallest case
        groups = {}
        for i in cand:
            key = "%s -> %s" % (outcome_class(before[i]["expect"]), outcome_class(after[i]["expect"]))
            groups.setdefault(key, []).append(i)
        ch["transitions"] = []
        for key, ids in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            small = min(ids, key=lambda i: (len(canonical(resolved_case(after[i], new_doc))), i))
            a, b = before[small], after[small]
            ch["transitions"].append({
                "outcomes": key, "cases": len(ids),
                "example": {"id": small, "case": short_case(b, new_doc),
                            "before": outcome_text(a.get("expect")), "after": outcome_text(b.get("expect"))}})
    return ch


def build_timeline(sweep, releases, results, wall_seconds=None, jobs=None, cached=None):
    """The timeline document from per-release results (dicts of summarize), oldest first.
    `sweep` is where the golden documents are (for the smallest changed cases), or None."""
    rel_rows = []
    for x in releases:
        r = results.get(x) or {"status": "missing", "reason": "no result.json", "layouts": {},
                               "checks": {}, "findings": {}, "steps": {}}
        steps = r.get("steps", {})
        secs = sum(int(v) for k, v in steps.items() if k.endswith("_s") and v.isdigit())
        rel_rows.append({
            "release": x, "status": r["status"], "reason": r.get("reason", ""),
            "layouts": {n: v["digest"] for n, v in sorted(r["layouts"].items())},
            "checks": {c: v["digest"] for c, v in sorted(r["checks"].items())},
            "cases": {c: len(v["cases"]) for c, v in sorted(r["checks"].items())},
            "findings": sorted(r["findings"]),
            "seconds": secs,
        })
        notes = release_notes(r)
        if notes:
            rel_rows[-1]["notes"] = notes
    layouts = {}
    for x in releases:
        for n, v in (results.get(x) or {}).get("layouts", {}).items():
            layouts.setdefault(v["digest"], dict(v["layout"], name=n))

    changes = []
    # layouts: bisected to the first release (with a layout) whose digest differs
    for name in STRUCTS:
        prev = None
        skipped = []
        for row in rel_rows:
            d = row["layouts"].get(name)
            if d is None:
                if prev is not None:
                    skipped.append(row["release"])
                continue
            if prev is not None and d != prev[1]:
                changes.append({"kind": "layout", "row": name, "release": row["release"],
                                "previous": prev[0], "untested_between": skipped,
                                "from": prev[1], "to": d,
                                "description": layout_change(layouts[prev[1]], layouts[d])})
            prev, skipped = (row["release"], d), []
    # golden categories
    docs = {}

    def doc(x):
        if sweep is None:
            return None
        if x not in docs:
            docs[x] = load_golden(sweep, x)
        return docs[x]

    for cat in CATEGORIES:
        prev = None
        skipped = []
        for x in releases:
            r = results.get(x) or {}
            c = r.get("checks", {}).get(cat)
            if c is None:
                if prev is not None:
                    skipped.append(x)
                continue
            if prev is not None and c["digest"] != prev[1]["digest"]:
                ch = behaviour_change(cat, prev[1]["cases"], c["cases"], doc(prev[0]), doc(x))
                ch.update(kind="behaviour", row=cat, release=x, previous=prev[0],
                          untested_between=skipped, **{"from": prev[1]["digest"], "to": c["digest"]})
                ch["description"] = "%d of %d cases changed%s%s" % (
                    ch["changed"], len(c["cases"]),
                    ", %d added" % ch["added"] if ch["added"] else "",
                    ", %d removed" % ch["removed"] if ch["removed"] else "")
                changes.append(ch)
            prev, skipped = (x, c), []
    changes.sort(key=lambda c: (version_key(c["release"]), c["kind"], c["row"]))

    # findings: the releases each affects, among the releases with golden results
    tested = [row["release"] for row in rel_rows if row["checks"]]
    findings = {}
    for x in tested:
        for fid, f in results[x]["findings"].items():
            e = findings.setdefault(fid, {"id": fid, "kind": f["kind"], "releases": []})
            e["releases"].append(x)
            e["detail"], e["reproducer"] = f["detail"], f["reproducer"]   # the newest's
    out_findings = []
    for fid in sorted(findings, key=lambda i: (version_key(findings[i]["releases"][0]), i)):
        e = findings[fid]
        e["first"], e["last"] = e["releases"][0], e["releases"][-1]
        e["spans"] = spans(tested, set(e["releases"]))
        out_findings.append(e)
    doc_out = {
        "schema": "cyview timeline v1",
        "python": next((r.get("python") for r in results.values() if r.get("python")), None),
        "releases": rel_rows,
        "layouts": {k: layouts[k] for k in sorted(layouts)},
        "changes": changes,
        "findings": out_findings,
    }
    if wall_seconds is not None:
        doc_out["sweep"] = {"wall_seconds": wall_seconds, "jobs": jobs, "cached": cached}
    return doc_out


def release_notes(r):
    """What a reader of a release's results should know about how they were made: the
    release installed as pure Python, layouts read from C that does not compile."""
    notes = []
    if r.get("install") == "pure-python":
        notes.append("Cython installed as pure Python (no wheel; its sdist does not build on this Python)")
    if r.get("layouts_tolerated") is not None and r.get("layouts"):
        notes.append("layouts from C that does not compile (function bodies skipped, a longintrepr.h "
                     "shim): %d clang error(s) outside the structs" % r["layouts_tolerated"])
    return notes


def spans(order, present):
    """Maximal runs [first, last] of consecutive entries of `order` that are in `present`."""
    out, cur = [], None
    for x in order:
        if x in present:
            cur = [x, x] if cur is None else [cur[0], x]
        elif cur is not None:
            out.append(cur)
            cur = None
    if cur is not None:
        out.append(cur)
    return out


def write_timeline_json(path, doc):
    """Sorted keys, one release / change / finding / layout a line (diff-friendly)."""
    lines = ["{"]
    keys = sorted(doc)
    for n, k in enumerate(keys):
        v = doc[k]
        tail = "," if n + 1 < len(keys) else ""
        if isinstance(v, list) and v:
            lines.append("%s: [" % json.dumps(k))
            lines += [canonical(x) + ("," if j + 1 < len(v) else "") for j, x in enumerate(v)]
            lines.append("]" + tail)
        elif isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
            lines.append("%s: {" % json.dumps(k))
            items = sorted(v.items())
            lines += ["%s: %s%s" % (json.dumps(a), canonical(b), "," if j + 1 < len(items) else "")
                      for j, (a, b) in enumerate(items)]
            lines.append("}" + tail)
        else:
            lines.append("%s: %s%s" % (json.dumps(k), canonical(v), tail))
    lines.append("}")
    text = "\n".join(lines) + "\n"
    json.loads(text)
    with open(path, "w") as f:
        f.write(text)


# ------------------------------------------------------------------ markdown


def row_values(doc):
    """Per timeline row (status, structs, categories, findings): its label and one value per
    release (None: not available), and the distinct values in order of first appearance."""
    rels = doc["releases"]
    rows = [("build", "status", [r["status"] for r in rels])]
    for name in STRUCTS:
        rows.append(("layout", name, [r["layouts"].get(name) for r in rels]))
    for cat in CATEGORIES:
        if any(cat in r["checks"] for r in rels):
            rows.append(("check", cat, [r["checks"].get(cat) for r in rels]))
    for f in doc["findings"]:
        have = set(f["releases"])
        rows.append(("finding", f["id"], [
            (r["release"] in have) if r["checks"] else None for r in rels]))
    return rows


def distinct(values):
    out = []
    for v in values:
        if v is not None and v not in out and not isinstance(v, bool):
            out.append(v)
    return out


def letters(values):
    """Each value's letter: A for the first distinct value of the row, B for the next..."""
    d = distinct(values)
    return [None if v is None else "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[d.index(v) % 26] for v in values]


def md_cell(t):
    return str(t).replace("|", "\\|").replace("\n", " ")


def glance_rows(doc):
    """Runs of consecutive releases with the same status, reason, letters and findings:
    (first, last, count, cells)."""
    rels = doc["releases"]
    rows = {label: letters(vals) for kind, label, vals in row_values(doc) if kind in ("layout", "check")}
    keys = []
    for i, r in enumerate(rels):
        reason = r["reason"].replace("==" + r["release"], "==X")   # uv names the release
        if r.get("notes"):
            reason = (reason + " " if reason else "") + "[%s]" % "; ".join(r["notes"])
        keys.append((r["status"], reason, tuple(rows[s][i] or "-" for s in STRUCTS),
                     tuple((rows[c][i] or "-") if c in rows else "-" for c in CATEGORIES),
                     tuple(r["findings"]) if r["checks"] else None))
    out = []
    i = 0
    while i < len(rels):
        k = i
        while k + 1 < len(rels) and keys[k + 1] == keys[i]:
            k += 1
        out.append((rels[i]["release"], rels[k]["release"], k - i + 1, keys[i]))
        i = k + 1
    return out


def glance_table(doc):
    out = ["| releases | n | status | slice struct | object struct | slice object struct | TypeInfo struct | %s | findings |"
           % " | ".join(CATEGORIES),
           "|---|---:|---|---|---|---|---|%s---:|" % ("---|" * len(CATEGORIES))]
    for first, last, count, (status, reason, lay, checks, findings) in glance_rows(doc):
        cells = [first if first == last else "%s to %s" % (first, last), str(count),
                 status + (": " + reason if reason else "")]
        cells += list(lay) + list(checks) + ["-" if findings is None else str(len(findings))]
        out.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    return out


def render_markdown(doc):
    rels = doc["releases"]
    n_ok = sum(r["status"] == "ok" for r in rels)
    out = ["# The ABI timeline: every Cython release from %s to %s" % (rels[0]["release"], rels[-1]["release"]),
           "",
           "Written by `ci/sweep` (`ci/timeline.py`). %d releases (pre-releases included), on CPython %s: "
           "%d built and run, %d whose C does not compile on this Python (no golden run; their layouts where "
           "libclang parses the C), "
           "%d not installable, %d failed otherwise."
           % (len(rels), doc.get("python") or "?", n_ok,
              sum(r["status"] == "c-failed" for r in rels),
              sum(r["status"] == "install-failed" for r in rels),
              sum(r["status"] not in ("ok", "c-failed", "install-failed") for r in rels)),
           ""]
    if doc.get("sweep"):
        sw = doc["sweep"]
        out += ["This sweep: %ds with %s parallel job(s), %s of %d releases taken from its cache; the "
                "seconds column is each release's probe when it last ran." % (
                    sw["wall_seconds"], sw["jobs"], "?" if sw.get("cached") is None else sw["cached"], len(rels)), ""]
    out += ["Letters: the distinct results of a row, oldest first (A is the oldest release's). "
            "Structs: `__Pyx_memviewslice` (slice struct), `__pyx_memoryview_obj` (object struct), "
            "`__pyx_memoryviewslice_obj` (slice object struct), `__Pyx_TypeInfo`. Golden "
            "categories: the golden harness's cases without compiled slicing, every third case of each id "
            "series and every case with more than 8 index items (those compared by outcome class: ok, "
            "ub, crash or the exception's type, since Cython then reads past its 8-entry arrays); "
            "the number of cases in parentheses. Findings: ci/report.py's `case_findings` and "
            "`compiler_crash_findings` on each release's golden document.",
            "",
            "## At a glance", "",
            "Consecutive releases with the same status, results and findings share a row.", ""]
    out += glance_table(doc)
    out += ["", "## Releases", "",
            "| release | status | slice struct | object struct | slice object struct | TypeInfo struct | %s | findings | s |"
            % " | ".join(c for c in CATEGORIES),
            "|---|---|---|---|---|---|%s---|---|" % ("---|" * len(CATEGORIES))]
    rows = {label: letters(vals) for kind, label, vals in row_values(doc) if kind in ("layout", "check")}
    for i, r in enumerate(rels):
        cells = [r["release"], r["status"] + (": " + r["reason"] if r["reason"] else "")
                 + (" [%s]" % "; ".join(r["notes"]) if r.get("notes") else "")]
        cells += [(rows[s][i] or "-") for s in STRUCTS]
        cells += [((rows[c][i] or "-") + (" (%d)" % r["cases"][c] if c in r["cases"] else "")) if c in rows else "-"
                  for c in CATEGORIES]
        cells += [str(len(r["findings"])) if r["checks"] else "-", str(r["seconds"])]
        out.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    out += ["", "## Changes, each at the first release that shows it", ""]
    if not doc["changes"]:
        out.append("None.")
    for c in doc["changes"]:
        between = (" (untested in between: %s)" % ", ".join(c["untested_between"])) if c["untested_between"] else ""
        out.append("* **%s** `%s` (%s, since %s%s): %s" % (
            c["release"], c["row"], c["kind"], c["previous"], between, c["description"]))
        if c["kind"] == "behaviour":
            out.append("  ids: %s%s" % (", ".join(c["ids"]),
                                        ", ..." if c["changed"] + c["added"] + c["removed"] > len(c["ids"]) else ""))
            for t in c.get("transitions", []):
                ex = t["example"]
                out.append("  * %d case(s) %s; smallest `%s`: %s: %s -> %s" % (
                    t["cases"], t["outcomes"], ex["id"], md_cell(ex["case"]), md_cell(ex["before"]),
                    md_cell(ex["after"])))
    out += ["", "## Findings", "",
            "| finding | first | last | affected releases (runs) | detail |", "|---|---|---|---|---|"]
    for f in doc["findings"]:
        out.append("| %s | %s | %s | %s | %s |" % (
            md_cell(f["id"]), f["first"], f["last"],
            md_cell(", ".join(a if a == b else "%s..%s" % (a, b) for a, b in f["spans"])), md_cell(f["detail"])))
    out += ["", "## Layouts", ""]
    for k, s in doc["layouts"].items():
        out.append("* `%s` %s: size %d, align %d; %s" % (
            k, s["name"], s["size"], s["align"],
            ", ".join("%s@%d" % (f[0], f[2]) for f in s["fields"])))
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------- svg

PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#edc948", "#76b7b2", "#9c755f", "#ff9da7",
           "#e15759", "#bab0ac"]
STATUS_COLOURS = {"ok": "#59a14f", "c-failed": "#edc948", "cython-failed": "#f28e2b",
                  "install-failed": "#bab0ac", "missing": "#ffffff"}
FINDING_ON, FINDING_OFF, NOT_RUN = "#d62728", "#e8f0e8", "#f4f4f4"
CELL_W, CELL_H, LABEL_W, TOP, FONT = 10, 14, 330, 58, "DejaVu Sans, Arial, sans-serif"


def colour(kind, value, values):
    if kind == "build":
        return STATUS_COLOURS.get(value, "#ffffff")
    if value is None:
        return NOT_RUN
    if kind == "finding":
        return FINDING_ON if value else FINDING_OFF
    return PALETTE[distinct(values).index(value) % len(PALETTE)]


def render_svg(doc):
    rels = doc["releases"]
    rows = row_values(doc)
    n = len(rels)
    grid_w = n * CELL_W
    width = LABEL_W + grid_w + 20
    y_grid_end = TOP + len(rows) * CELL_H
    label_h = 62
    legend_top = y_grid_end + label_h + 16
    legend_lines = 4
    height = legend_top + legend_lines * 18 + 10
    e = html.escape
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="%s" font-size="10">' % (width, height, width, height, FONT),
           '<title>cyview ABI timeline: Cython %s to %s</title>' % (e(rels[0]["release"]), e(rels[-1]["release"])),
           '<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>' % (width, height),
           '<text x="10" y="20" font-size="14" font-weight="bold">Cython memoryview ABI timeline: '
           '%d releases, %s to %s (CPython %s)</text>' % (n, e(rels[0]["release"]), e(rels[-1]["release"]),
                                                         e(str(doc.get("python") or "?"))),
           '<text x="10" y="38">Rows: build status, struct layouts, golden categories (one colour per '
           'distinct result, oldest first), findings (red: affected). Columns: releases, oldest left.</text>']
    section = {"build": "", "layout": "layout ", "check": "golden ", "finding": ""}
    for j, (kind, label, values) in enumerate(rows):
        y = TOP + j * CELL_H
        text = section[kind] + label
        if len(text) > 58:
            text = text[:56] + "..."
        out.append('<text x="%d" y="%d" text-anchor="end">%s</text>' % (LABEL_W - 6, y + CELL_H - 3, e(text)))
        let = letters(values) if kind in ("layout", "check") else [None] * n
        cells = []
        for i, v in enumerate(values):
            tip = {
                "build": lambda: "%s%s%s" % (v, (": " + rels[i]["reason"]) if rels[i]["reason"] else "",
                                             " [%s]" % "; ".join(rels[i]["notes"]) if rels[i].get("notes") else ""),
                "layout": lambda: "not extracted" if v is None else "result %s (%s)" % (let[i], v),
                "check": lambda: "not run" if v is None else "result %s (%s)" % (let[i], v),
                "finding": lambda: "not run" if v is None else ("affected" if v else "not affected"),
            }[kind]()
            cells.append((colour(kind, v, values), tip))
        # one rectangle per run of releases with the same result
        i = 0
        while i < n:
            k = i
            while k + 1 < n and cells[k + 1] == cells[i]:
                k += 1
            span = rels[i]["release"] if i == k else "%s to %s" % (rels[i]["release"], rels[k]["release"])
            out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s</title></rect>'
                       % (LABEL_W + i * CELL_W, y, (k - i + 1) * CELL_W, CELL_H - 1, cells[i][0],
                          e("%s: %s: %s" % (label, span, cells[i][1]))))
            if let[i] is not None:
                # the result's letter (timeline.md's) at the start of the run
                out.append('<text x="%d" y="%d" font-size="9" fill="#ffffff" text-anchor="middle">%s</text>'
                           % (LABEL_W + i * CELL_W + CELL_W // 2, y + CELL_H - 4, let[i]))
            i = k + 1
    # a line where the major.minor series changes
    for i in range(1, n):
        if version_key(rels[i]["release"])[0][:2] != version_key(rels[i - 1]["release"])[0][:2]:
            x = LABEL_W + i * CELL_W
            out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ffffff" stroke-width="1.5"/>'
                       % (x, TOP, x, y_grid_end))
    # a line under the status row and after the layouts and checks
    kinds = [k for k, _l, _v in rows]
    for j in range(1, len(rows)):
        if kinds[j] != kinds[j - 1]:
            y = TOP + j * CELL_H
            out.append('<line x1="10" y1="%d" x2="%d" y2="%d" stroke="#333333" stroke-width="1"/>'
                       % (y, LABEL_W + grid_w, y))
    # release labels, rotated; the major series marked
    for i, r in enumerate(rels):
        x = LABEL_W + i * CELL_W + CELL_W - 2
        out.append('<text x="%d" y="%d" font-size="8" transform="rotate(-90 %d %d)" text-anchor="end">%s</text>'
                   % (x, y_grid_end + 4, x, y_grid_end + 4, e(r["release"])))
    ly = legend_top
    items = [("build", [("built and run", STATUS_COLOURS["ok"]),
                        ("C does not compile on this Python", STATUS_COLOURS["c-failed"]),
                        ("Cython fails", STATUS_COLOURS["cython-failed"]),
                        ("not installable", STATUS_COLOURS["install-failed"])]),
             ("layouts and golden categories", [("result A (the oldest)", PALETTE[0]), ("B", PALETTE[1]),
                                                ("C", PALETTE[2]), ("D", PALETTE[3]), ("not run", NOT_RUN)]),
             ("findings", [("affected", FINDING_ON), ("not affected", FINDING_OFF), ("not run", NOT_RUN)])]
    for title, entries in items:
        x = 10
        out.append('<text x="%d" y="%d" font-weight="bold">%s:</text>' % (x, ly + 10, e(title)))
        x += 190
        for text, c in entries:
            out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s" stroke="#888888" stroke-width="0.5"/>'
                       % (x, ly, c))
            out.append('<text x="%d" y="%d">%s</text>' % (x + 16, ly + 10, e(text)))
            x += 28 + 6 * len(text)
        ly += 18
    out.append('<text x="10" y="%d">Hover a cell for the release and the result; ci/sweep writes '
               'timeline.md with every change described.</text>' % (ly + 10))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def render(doc, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "timeline.md"), "w") as f:
        f.write(render_markdown(doc))
    with open(os.path.join(out_dir, "timeline.svg"), "w") as f:
        f.write(render_svg(doc))


# ------------------------------------------------------------- render check


def png_pixels(data):
    """(width, height, rows of RGBA/RGB tuples) of an 8-bit RGB or RGBA, non-interlaced PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    w, h, depth, ctype, _comp, _filt, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError("unsupported PNG (depth %d, colour type %d, interlace %d)" % (depth, ctype, interlace))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def png_colours(data):
    """The set of distinct RGB colours of a PNG."""
    w, _h, bpp, rows = png_pixels(data)
    out = set()
    for line in rows:
        for x in range(w):
            out.add(tuple(line[x * bpp:x * bpp + 3]))
    return out


def hex_rgb(c):
    return tuple(int(c[i:i + 2], 16) for i in (1, 3, 5))


def svg_size(svg_text):
    m = re.search(r'<svg[^>]* width="(\d+)" height="(\d+)"', svg_text)
    return int(m.group(1)), int(m.group(2))


def check_svg(svg, png, chromium="chromium"):
    with open(svg) as f:
        text = f.read()
    w, h = svg_size(text)
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--screenshot=%s" % os.path.abspath(png), "--window-size=%d,%d" % (w, h),
           "file://%s" % os.path.abspath(svg)]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180)
    if p.returncode != 0 or not os.path.exists(png):
        raise SystemExit("ci/timeline.py check-svg: chromium failed (%d): %s" % (p.returncode, p.stdout[-500:]))
    with open(png, "rb") as f:
        colours = png_colours(f.read())
    wanted = {hex_rgb(STATUS_COLOURS["ok"]), hex_rgb(PALETTE[0])}
    missing = [c for c in wanted if c not in colours]
    if len(colours) < 8 or missing:
        raise SystemExit("ci/timeline.py check-svg: %s renders blank or without the timeline's colours "
                         "(%d distinct colours; missing %s)" % (svg, len(colours), missing))
    return len(colours)


# ---------------------------------------------------------------------- main


def main(argv=None):
    ap = argparse.ArgumentParser(prog="ci/timeline.py", description="The ABI timeline of ci/sweep.")
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("releases", help="Cython releases on PyPI, oldest first")
    r.add_argument("--min", default="0.20")
    s = sub.add_parser("summarize", help="DIR/result.json from ci/probe's outputs")
    s.add_argument("--label", required=True)
    s.add_argument("--dir", required=True)
    s.add_argument("--install-failed", metavar="REASON")
    b = sub.add_parser("build", help="timeline.json, .md, .svg from per-release results")
    b.add_argument("--sweep", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--wall-seconds", type=int)
    b.add_argument("--jobs", type=int)
    b.add_argument("--cached", type=int, help="how many releases the sweep took from its cache")
    b.add_argument("releases", nargs="+")
    g = sub.add_parser("render", help="timeline.md and .svg from timeline.json")
    g.add_argument("--json", required=True)
    g.add_argument("--out", required=True)
    c = sub.add_parser("check-svg", help="render the SVG with headless Chromium, fail when blank")
    c.add_argument("--svg", required=True)
    c.add_argument("--png", required=True)
    c.add_argument("--chromium", default="chromium")
    a = ap.parse_args(argv)
    if a.command == "releases":
        p = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "cython", "--pre"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            print("ci/timeline.py releases: pip index versions failed: %s" % p.stderr.strip().splitlines()[-1:],
                  file=sys.stderr)
            return 1
        for v in select_releases(parse_pip_versions(p.stdout), a.min):
            print(v)
    elif a.command == "summarize":
        res = summarize(a.label, a.dir, a.install_failed)
        write_json(os.path.join(a.dir, "result.json"), res)
    elif a.command == "build":
        results = {}
        for x in a.releases:
            p = os.path.join(a.sweep, x, "result.json")
            if os.path.exists(p):
                with open(p) as f:
                    results[x] = json.load(f)
        doc = build_timeline(a.sweep, a.releases, results, a.wall_seconds, a.jobs, a.cached)
        os.makedirs(a.out, exist_ok=True)
        write_timeline_json(os.path.join(a.out, "timeline.json"), doc)
        render(doc, a.out)
    elif a.command == "render":
        with open(a.json) as f:
            render(json.load(f), a.out)
    else:
        print("ci/timeline.py check-svg: %s renders (%d distinct colours)" % (a.svg, check_svg(a.svg, a.png, a.chromium)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
