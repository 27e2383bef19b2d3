#!/usr/bin/env python3
"""The comparison of ci/diff: two Cython builds' layouts and golden results (stdlib only).

  ci/diff.py compare --a DIR --b DIR [--out FILE.md] [--json FILE.json]

Each DIR is a probe of one Cython build (ci/probe's output): `golden.json` (the golden
harness's document for that build, cython_fixtures/golden/golden_run.py) and `layouts.json`
(the memoryview structs as clang lays them out, cyview-build's `Layouts`), and `meta.json`
(its label: source and version). Prints (and writes to --out) a markdown report:

* the layouts, field by field: structs and fields added or removed, offsets, sizes, alignments
  and C types that changed;
* the golden cases whose result differs, grouped by kind, with a count and the smallest
  reproducer of each group. A group is (category, path, class). A slicing case's class is
  its source kind, the finding class of A's result against Python semantics
  (cython_patches/evidence.py: `outside-source`, `more elements than Python`, `fewer
  elements than Python`, `another shape (same elements)`, `agrees with Python`, ...) and
  whether B's result is Python's: `compiled-direct: more elements than Python -> B = Python`.
  An element or transpose case that either build flags as selecting outside its source has
  that finding's class (`outside-source/<path>-<direct|indirect>`, as ci/report.py names it);
  any other case is classed by how its outcome changed (`ok -> err IndexError`, `err
  message`, ...).

--json writes the same as data: {"layouts": [...], "groups": [{"category", "path", "class",
"count", "ids", "reproducer"}], "changed": N, "compared": N}. Exit status 0 whether or not the
builds differ (2 on bad input).

Tests: ci/tests/test_diff.py.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (ci/report.py: reproducer, count_elements, ints_of, constructible)

CASE_CATEGORIES = ("slice", "element", "transpose", "contig", "copy", "validate", "compile")


# -- layouts -------------------------------------------------------------------------------

def _fields(struct):
    return {f["name"]: f for f in struct.get("fields", [])}


def layout_diff(a, b):
    """The differences between two `Layouts` documents, one dict a difference, in struct-name
    order: {"struct", "what": "added" | "removed" | "size" | "align" | "field added" |
    "field removed" | "field renamed" | "field offset" | "field size" | "field type", "a", "b",
    "field"}. A field renamed is one removed and one added at the same offset with the same size."""
    sa = {s["name"]: s for s in a.get("structs", [])}
    sb = {s["name"]: s for s in b.get("structs", [])}
    out = []
    for name in sorted(set(sa) | set(sb)):
        if name not in sb:
            out.append({"struct": name, "what": "removed", "a": sa[name]["size"], "b": None})
            continue
        if name not in sa:
            out.append({"struct": name, "what": "added", "a": None, "b": sb[name]["size"]})
            continue
        x, y = sa[name], sb[name]
        for key in ("size", "align"):
            if x.get(key) != y.get(key):
                out.append({"struct": name, "what": key, "a": x.get(key), "b": y.get(key)})
        fx, fy = _fields(x), _fields(y)
        # A field removed and another added at the same offset, of the same size: a rename.
        renamed = {}
        for f in set(fx) - set(fy):
            for g in set(fy) - set(fx):
                if (fx[f]["offset"], fx[f]["size"]) == (fy[g]["offset"], fy[g]["size"]) \
                        and g not in renamed.values():
                    renamed[f] = g
                    break
        # In offset order of whichever build has the field.
        order = sorted(set(fx) | set(fy),
                       key=lambda f: ((fx.get(f) or fy.get(f)).get("offset", 0), f))
        for f in order:
            if f in renamed:
                g = renamed[f]
                out.append({"struct": name, "what": "field renamed", "field": f,
                            "a": _field_text(fx[f]), "b": "%s: %s" % (g, _field_text(fy[g]))})
            elif f in renamed.values():
                continue
            elif f not in fy:
                out.append({"struct": name, "what": "field removed", "field": f,
                            "a": _field_text(fx[f]), "b": None})
            elif f not in fx:
                out.append({"struct": name, "what": "field added", "field": f,
                            "a": None, "b": _field_text(fy[f])})
            else:
                for key, what in (("offset", "field offset"), ("size", "field size"),
                                  ("c_type", "field type")):
                    if fx[f].get(key) != fy[f].get(key):
                        out.append({"struct": name, "what": what, "field": f,
                                    "a": fx[f].get(key), "b": fy[f].get(key)})
    return out


def _field_text(f):
    return "%s at %s (%s bytes)" % (f.get("c_type", "?"), f.get("offset"), f.get("size"))


# -- golden cases --------------------------------------------------------------------------

def outcome_label(expect):
    """A short name of an outcome: `ok`, `element`, `err IndexError`, `crash`, `ub`."""
    k = next(iter(expect))
    if k == "err":
        return "err %s" % expect["err"].get("kind", "?")
    return k


def _indirect(source):
    return source is not None and any(x >= 0 for x in source.get("suboffsets", []))


def _evidence():
    """cython_patches/evidence.py: Python semantics of a golden slicing case and the finding
    classes of a result against it."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(os.path.dirname(here), "cython_patches")
    if path not in sys.path:
        sys.path.insert(0, path)
    import evidence
    return evidence


def python_class(case_a, case_b, source):
    """For a slicing case: the finding class of A's result against Python semantics (as
    cython_patches/evidence.py names them: `outside-source`, `more elements than Python`,
    `agrees with Python`, ...) and whether B's result is Python's, as one label; None
    when Python semantics do not apply (no index, no source)."""
    if source is None or "index" not in case_a:
        return None
    ev = _evidence()
    try:
        py = ev.python_semantics(source, case_a["index"])
    except ev.PyRaises as e:
        py = e
    cls = ev.klass(case_a, source, py)
    ob = ev.outcome(case_b)
    if isinstance(py, ev.PyRaises):
        b_is_python = ob[0] == "err"
    elif py is None:
        return "%s; %s" % (cls, "B not modelled")
    else:
        b_is_python = ob[0] == "ok" and ob[1] == py[0] and ob[2] == py[1]
    return "%s -> %s" % (cls, "B = Python" if b_is_python else "B differs from Python")


def case_class(category, case_a, case_b, source):
    """The group class of a changed case (see the module docstring)."""
    if category == "slice":
        cls = python_class(case_a, case_b, source)
        if cls is not None:
            return "%s-%s: %s" % (case_a.get("path", "?"),
                                  "indirect" if _indirect(source) else "direct", cls)
    if category in ("slice", "element", "transpose") and (
            case_a.get("outside_source") or case_b.get("outside_source")):
        return "outside-source/%s-%s" % (case_a.get("path", "?"),
                                        "indirect" if _indirect(source) else "direct")
    la, lb = outcome_label(case_a["expect"]), outcome_label(case_b["expect"])
    if la == lb:
        if la.startswith("err"):
            return "%s: message" % la
        return "%s: result" % la
    return "%s -> %s" % (la, lb)


def _size_key(case, sources):
    src = sources[case["source"]] if isinstance(case.get("source"), int) else None
    return (src["ndim"] if src else 0, len(case.get("index", [])),
            report.ints_of(case.get("index", [])), report.count_elements(src) if src else 0,
            case["id"])


def _repro(category, case_a, case_b, doc_a, label_a, label_b):
    sources = doc_a.get("sources", [])
    src = sources[case_a["source"]] if isinstance(case_a.get("source"), int) else None
    fns = {f["name"]: f for f in doc_a.get("functions", [])}
    lines = []
    if category in ("slice", "element", "transpose") and src is not None and "index" in case_a \
            and ("func" not in case_a or case_a["func"] in fns):
        try:
            text = report.reproducer(case_a, src, fns.get(case_a.get("func"), {}))
            lines = text.split("\n")[:-1]  # its last line is build A's outcome
        except (KeyError, TypeError, ValueError, IndexError):
            lines = []
    if not lines:
        shown = {k: v for k, v in case_a.items() if k not in ("expect", "outside_source")}
        lines = ["# case " + json.dumps(shown, sort_keys=True)]
    for label, case in ((label_a, case_a), (label_b, case_b)):
        o = report.outcome(case["expect"], src) if src is not None and category != "validate" \
            else json.dumps(case["expect"], sort_keys=True)
        lines.append("# %s: %s" % (label, o))
    return "\n".join(lines)


def golden_diff(doc_a, doc_b, label_a="A", label_b="B"):
    """(compared, groups): the golden cases of both documents with the same id, and the
    groups of those whose `expect` differs, largest group first."""
    groups = {}
    compared = 0
    sources = doc_a.get("sources", [])
    for cat in CASE_CATEGORIES:
        by_id = {c["id"]: c for c in doc_b.get(cat, [])}
        for ca in doc_a.get(cat, []):
            cb = by_id.get(ca["id"])
            if cb is None:
                continue
            compared += 1
            if ca["expect"] == cb["expect"] and bool(ca.get("outside_source")) == bool(cb.get("outside_source")):
                continue
            src = sources[ca["source"]] if isinstance(ca.get("source"), int) else None
            key = (cat, ca.get("path", "-"), case_class(cat, ca, cb, src))
            groups.setdefault(key, []).append((ca, cb))
    out = []
    for (cat, path, cls), pairs in groups.items():
        rep = min(pairs, key=lambda p: _size_key(p[0], sources))
        out.append({"category": cat, "path": path, "class": cls, "count": len(pairs),
                    "ids": sorted(p[0]["id"] for p in pairs),
                    "reproducer": _repro(cat, rep[0], rep[1], doc_a, label_a, label_b)})
    out.sort(key=lambda g: (-g["count"], g["category"], g["path"], g["class"]))
    return compared, out


def only_in(doc_a, doc_b):
    """The case ids one document has and the other lacks (fixtures that differ)."""
    a = {c["id"] for cat in CASE_CATEGORIES for c in doc_a.get(cat, [])}
    b = {c["id"] for cat in CASE_CATEGORIES for c in doc_b.get(cat, [])}
    return sorted(a - b), sorted(b - a)


# -- report --------------------------------------------------------------------------------

def render(label_a, label_b, layouts, compared, groups, missing, sources=(None, None)):
    changed = sum(g["count"] for g in groups)
    md = ["# ci/diff: %s vs %s" % (label_a, label_b), ""]
    if any(sources):
        md += ["- %s: %s" % (label, src or "(source not recorded)")
               for label, src in ((label_a, sources[0]), (label_b, sources[1]))]
        md.append("")
    md += ["## Layouts", ""]
    if layouts is None:
        md += ["(not compared: a build has no layouts)", ""]
    elif not layouts:
        md += ["The memoryview structs are identical, field by field.", ""]
    else:
        md += ["| struct | change | field | %s | %s |" % (label_a, label_b), "|---|---|---|---|---|"]
        for d in layouts:
            md.append("| `%s` | %s | %s | %s | %s |" % (
                d["struct"], d["what"], "`%s`" % d["field"] if d.get("field") else "",
                "" if d["a"] is None else d["a"], "" if d["b"] is None else d["b"]))
        md.append("")
    md += ["## Golden cases", "",
           "%d cases compared, %d differ, in %d groups." % (compared, changed, len(groups)), ""]
    if missing[0] or missing[1]:
        md += ["Cases only %s has: %d; only %s has: %d (not compared)."
               % (label_a, len(missing[0]), label_b, len(missing[1])), ""]
    if groups:
        md += ["| category | path | class | cases |", "|---|---|---|---:|"]
        for g in groups:
            md.append("| %s | %s | %s | %d |" % (g["category"], g["path"], g["class"], g["count"]))
        md.append("")
        for g in groups:
            ids = ", ".join(g["ids"][:5]) + (", ..." if len(g["ids"]) > 5 else "")
            md += ["### %s / %s / %s: %d cases" % (g["category"], g["path"], g["class"], g["count"]),
                   "", "ids: %s" % ids, "", "```python", g["reproducer"], "```", ""]
    return "\n".join(md)


def load_probe(d):
    def read(name):
        p = os.path.join(d, name)
        if not os.path.exists(p):
            return None
        with open(p) as f:
            return json.load(f)
    meta = read("meta.json") or {}
    golden = read("golden.json")
    if golden is None:
        raise SystemExit("ci/diff.py: %s has no golden.json (was the build probed?)" % d)
    return meta, golden, read("layouts.json")


def label_of(meta, d):
    version = meta.get("version") or meta.get("cython")
    src = meta.get("label") or meta.get("source") or os.path.basename(os.path.normpath(d))
    if not version or src == version:
        return src
    return "%s (%s)" % (version, src)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="ci/diff.py")
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--a", required=True)
    c.add_argument("--b", required=True)
    c.add_argument("--out")
    c.add_argument("--json")
    args = ap.parse_args(argv)
    ma, ga, la = load_probe(args.a)
    mb, gb, lb = load_probe(args.b)
    va, vb = ma.get("version"), mb.get("version")
    if va and vb and va != vb:
        label_a, label_b = va, vb  # the versions tell the builds apart
    else:
        label_a, label_b = label_of(ma, args.a), label_of(mb, args.b)
    if label_a == label_b:
        label_a, label_b = "A: " + label_a, "B: " + label_b
    layouts = layout_diff(la, lb) if la is not None and lb is not None else None
    compared, groups = golden_diff(ga, gb, label_a, label_b)
    missing = only_in(ga, gb)
    sources = (ma.get("label"), mb.get("label"))
    text = render(label_a, label_b, layouts, compared, groups, missing, sources)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"a": label_a, "b": label_b, "source_a": sources[0], "source_b": sources[1],
                       "layouts": layouts, "groups": groups,
                       "compared": compared, "changed": sum(g["count"] for g in groups),
                       "only_a": missing[0], "only_b": missing[1]}, f, indent=1, sort_keys=True)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
