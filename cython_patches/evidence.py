#!/usr/bin/env python3
"""Evidence for the slice-bounds patch: stock Cython against the patched build, on the
golden vectors (cython_fixtures/golden/golden_run.py's documents, one release each).

    evidence.py STOCK.json PATCHED.json

STOCK.json: e.g. `releases.py split crates/cyview/tests/golden/cython.json 3.3.1`;
PATCHED.json: golden_run.py's output for the patched build (cython_patches/README.md).

Prints, in Markdown:
1. the golden findings (ci/report.py's case_findings) of both builds;
2. per finding class (what the stock result is against Python semantics), how many slicing
   cases changed between the builds and whether each changed case now equals Python
   semantics;
3. what still differs from Python semantics in the patched build, and why.

Python semantics of a case: per source dimension, the indices CPython's `range(n)[item]`
selects (an index with wraparound, a slice with `PySlice_AdjustIndices`; `...` and `None`
as NumPy expands them), mapped to the source's element offsets. For direct sources the
same case is also sliced by NumPy on a buffer with the source's geometry and the two are
required to agree. Exit status 1 if a changed case does not equal Python semantics or the
range model and NumPy disagree.
"""

import importlib.util
import itertools
import json
import os
import sys
from collections import Counter, defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_report():
    spec = importlib.util.spec_from_file_location("report", os.path.join(ROOT, "ci", "report.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def element_at(src, idx):
    """Byte offset of the source element at multi-index idx (PEP 3118 with suboffsets)."""
    ptr = dict((s, t) for s, t in src["pointers"])
    off = src["data"]
    for d, i in enumerate(idx):
        off += i * src["strides"][d]
        if src["suboffsets"][d] >= 0:
            off = ptr[off] + src["suboffsets"][d]
    return off


class PyRaises(Exception):
    pass


def expand(items, ndim):
    """NumPy's expansion of ... and None: a list of ('i', n) / ('s', slice) / ('n',)."""
    consuming = sum(1 for it in items if "i" in it or "s" in it)
    if sum(1 for it in items if "ellipsis" in it) > 1:
        raise PyRaises("IndexError")
    if consuming > ndim:
        raise PyRaises("IndexError")
    out, seen_ellipsis = [], False
    for it in items:
        if "ellipsis" in it:
            out += [("s", slice(None))] * (ndim - consuming)
            seen_ellipsis = True
        elif "newaxis" in it:
            out.append(("n",))
        elif "i" in it:
            out.append(("i", it["i"]))
        elif "s" in it:
            out.append(("s", slice(*it["s"])))
        else:
            return None  # a bad index type (object path): not modelled
    if not seen_ellipsis:
        out += [("s", slice(None))] * (ndim - consuming)
    return out


def python_semantics(src, items):
    """(shape, elements) that Python semantics give, or PyRaises."""
    ex = expand(items, src["ndim"])
    if ex is None:
        return None
    per_dim, shape, dim = [], [], 0
    for e in ex:
        if e[0] == "n":
            shape.append(1)
            continue
        n = src["shape"][dim]
        r = range(n)
        if e[0] == "i":
            try:
                per_dim.append([r[e[1]]])
            except IndexError:
                raise PyRaises("IndexError")
        else:
            if e[1].step == 0:
                raise PyRaises("ValueError")
            sel = list(r[e[1]])
            per_dim.append(sel)
            shape.append(len(sel))
        dim += 1
    elements = [element_at(src, idx) for idx in itertools.product(*per_dim)]
    return shape, elements


def numpy_semantics(np, src, items):
    """The same through NumPy, for direct sources: (shape, elements) or None if NumPy cannot
    build the source."""
    try:
        buf = bytearray(src["memory_len"])
        base = np.frombuffer(buf, dtype=np.uint8)
        a = np.lib.stride_tricks.as_strided(base[src["data"]:], shape=src["shape"],
                                            strides=src["strides"])
    except Exception:
        return None
    key = []
    for it in items:
        if "ellipsis" in it:
            key.append(Ellipsis)
        elif "newaxis" in it:
            key.append(None)
        elif "i" in it:
            key.append(it["i"])
        elif "s" in it:
            key.append(slice(*it["s"]))
        else:
            return None
    try:
        # A trailing new axis keeps a 0-d result an array (an all-integer index would give a
        # scalar, without an address); it is dropped from the shape below.
        tail = (None,) if Ellipsis in key else (Ellipsis, None)
        v = a[tuple(key) + tail]
    except IndexError:
        raise PyRaises("IndexError")
    except ValueError:
        raise PyRaises("ValueError")
    except (OverflowError, TypeError):
        return None  # a bound beyond a C long: NumPy cannot take it, range() can
    if v.size == 0:
        return list(v.shape[:-1]), []
    origin = base.__array_interface__["data"][0]
    start = v.__array_interface__["data"][0] - origin
    elements = []
    for idx in itertools.product(*(range(n) for n in v.shape)):
        elements.append(start + sum(i * s for i, s in zip(idx, v.strides)))
    # as_strided on uint8 gives itemsize 1; the golden sources' element offsets are the same
    return list(v.shape[:-1]), elements


def outcome(case):
    exp = case["expect"]
    if "ok" in exp and isinstance(exp["ok"], dict):
        return ("ok", exp["ok"]["shape"], exp["ok"].get("elements", []))
    if "err" in exp:
        return ("err", exp["err"]["kind"], None)
    return (next(iter(exp)), None, None)


def klass(case, src, py):
    """The finding class of a stock case against Python semantics."""
    if case.get("outside_source"):
        return "outside-source"
    o = outcome(case)
    if py is None:
        return "not modelled (bad index type, crash)"
    if isinstance(py, PyRaises):
        return "Python raises" + (" (agrees)" if o[0] == "err" else "; Cython slices")
    if o[0] != "ok":
        return "Cython raises where Python slices"
    shape, elements = py
    if o[2] == elements and o[1] == shape:
        return "agrees with Python"
    if o[2] == elements:
        return "another shape (same elements)"
    if len(o[2]) > len(elements):
        return "more elements than Python"
    if len(o[2]) < len(elements):
        return "fewer elements than Python"
    return "other elements than Python"


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    stock, patched = (json.load(open(p)) for p in argv[1:])
    try:
        import numpy as np
    except ImportError:
        np = None
    report = load_report()
    bad = 0

    print("## Golden findings (ci/report.py case_findings)\n")
    print("| finding | %s | %s |" % (stock["cython"], patched["cython"]))
    print("|---|---|---|")
    fs = {f["id"]: f for f in report.case_findings(stock, stock["cython"])}
    fp = {f["id"]: f for f in report.case_findings(patched, patched["cython"])}
    for fid in sorted(set(fs) | set(fp)):
        cell = lambda f: f["detail"].split(";")[0] if f else "—"
        print("| `%s` | %s | %s |" % (fid, cell(fs.get(fid)), cell(fp.get(fid))))

    sources = stock["sources"]
    assert sources == patched["sources"], "the two documents have different sources"
    by_id = {c["id"]: c for c in patched["slice"]}
    changed = defaultdict(Counter)   # class -> Counter(path/what, "now Python"/"not Python")
    geometry_only = Counter()        # class -> changed cases with the same shape and elements
    same_pointer = Counter()         # class -> changed cases with stock's data, strides, suboffsets
    totals = Counter()
    still = defaultdict(Counter)     # (class, path) -> Counter(build)
    numpy_checked = numpy_disagree = 0
    for c in stock["slice"]:
        p = by_id[c["id"]]
        assert (c["index"], c["source"], c.get("func"), c["path"]) == \
               (p["index"], p["source"], p.get("func"), p["path"]), c["id"]
        src = sources[c["source"]]
        indirect = any(s >= 0 for s in src["suboffsets"])
        where = "%s-%s" % (c["path"], "indirect" if indirect else "direct")
        try:
            py = python_semantics(src, c["index"])
        except PyRaises as e:
            py = e
        if np is not None and not indirect and py is not None:
            try:
                npy = numpy_semantics(np, src, c["index"])
            except PyRaises as e:
                npy = e
            if npy is not None:
                numpy_checked += 1
                same = (type(npy) is type(py) and str(npy) == str(py)) if isinstance(npy, PyRaises) \
                    else (not isinstance(py, PyRaises) and npy == py)
                if not same:
                    numpy_disagree += 1
                    if numpy_disagree <= 5:
                        print("range model vs NumPy differ on %s: %r vs %r" % (c["id"], py, npy),
                              file=sys.stderr)
        k = klass(c, src, py)
        totals[k] += 1
        if c["expect"] != p["expect"]:
            po = outcome(p)
            ok = (py is not None and not isinstance(py, PyRaises) and po[0] == "ok"
                  and [po[1], po[2]] == list(py))
            changed[k][(where, ok)] += 1
            so = outcome(c)
            if so[0] == po[0] == "ok" and (so[1], so[2]) == (po[1], po[2]):
                geometry_only[k] += 1
            if so[0] == po[0] == "ok":
                keys = ("data", "strides", "suboffsets", "slice_suboffsets")
                if all(c["expect"]["ok"].get(x) == p["expect"]["ok"].get(x) for x in keys):
                    same_pointer[k] += 1
            if not ok:
                bad += 1
                if bad <= 10:
                    print("changed case %s is not Python semantics: %r vs %r"
                          % (c["id"], po, py), file=sys.stderr)
        for build, case in (("stock", c), ("patched", p)):
            reason = klass(case, src, py)
            if reason in ("agrees with Python", "Python raises (agrees)"):
                continue
            ok = case["expect"].get("ok", {})
            if isinstance(ok, dict) and any(x < 0 and x != -1 for x in ok.get("slice_suboffsets", [])):
                reason += "; a kept indirect suboffset turned negative"
            still[(reason, where)][build] += 1

    print("\n## Golden slicing cases changed by the patch, per finding class of the stock result\n")
    print("Class: the stock %s result against Python semantics. Changed: the patched result "
          "differs from the stock one; each changed case is compared with Python semantics."
          % stock["cython"])
    print("\"Same elements\": changed cases whose shape and elements did not change (only "
          "the data pointer, strides or suboffsets). \"Same pointers\": changed cases whose "
          "data pointer, strides and suboffsets are stock's (only the shape changed).")
    print("\n| class (stock) | cases | changed | changed, now = Python | same elements "
          "| same pointers | by path |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for k in sorted(totals):
        ch = changed.get(k, Counter())
        n_changed = sum(ch.values())
        n_ok = sum(v for (w, ok), v in ch.items() if ok)
        paths = Counter()
        for (w, ok), v in ch.items():
            paths[w] += v
        print("| %s | %d | %d | %d | %d | %d | %s |" % (
            k, totals[k], n_changed, n_ok, geometry_only[k], same_pointer[k],
            ", ".join("%s %d" % kv for kv in sorted(paths.items())) or "—"))
    print("| **all** | %d | %d | %d | %d | %d | |" % (
        sum(totals.values()), sum(sum(c.values()) for c in changed.values()),
        sum(v for c in changed.values() for (w, ok), v in c.items() if ok),
        sum(geometry_only.values()), sum(same_pointer.values())))
    print("\nRange model cross-checked with NumPy on %d direct cases: %d disagree."
          % (numpy_checked, numpy_disagree))
    print("\n## Slicing results that differ from Python semantics, per build\n")
    print("| class | path | %s | %s |" % (stock["cython"], patched["cython"]))
    print("|---|---|---:|---:|")
    for (reason, where), n in sorted(still.items()):
        print("| %s | %s | %d | %d |" % (reason, where, n["stock"], n["patched"]))
    other = {}
    for cat in ("element", "transpose", "contig", "copy", "validate", "compile"):
        a = {c["id"]: c["expect"] for c in stock.get(cat, [])}
        b = {c["id"]: c["expect"] for c in patched.get(cat, [])}
        other[cat] = sum(1 for i in a if a[i] != b.get(i))
    print("\nOther golden categories, cases changed: %s."
          % ", ".join("%s %d" % kv for kv in other.items()))
    if bad or numpy_disagree:
        print("\nFAILED: %d changed cases differ from Python semantics, %d NumPy disagreements"
              % (bad, numpy_disagree))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
