#!/usr/bin/env python3
"""Cuts the fixtures of ci/tests/test_timeline.py from a real ci/sweep output folder:

    python3 ci/tests/data/timeline/cut.py target/cyview-sweep RELEASE... 

For each RELEASE: layouts-RELEASE.json (ci/probe's layouts.json, whole), golden-RELEASE.json
(ci/probe's golden.json cut to the cases of IDS below, their sources renumbered 0.. in order of
first use, the functions they name; notes dropped) and steps-RELEASE (ci/probe's steps file).
Nothing else is changed.
"""
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# A few cases of each category: the first of each id series, v[0, 0] on a 1-d view (its
# message changed in 3.0 and 3.3: slice-o-02513), two with 30 index items (slice-o-02694: an
# IndexError whose text depends on the memory past the struct; slice-o-02698: a crash in
# 0.29 and 3.3, an IndexError in 3.0 to 3.2).
IDS = ["slice-o-00001", "slice-o-00004", "slice-o-02513", "slice-o-02694", "slice-o-02698", "elem-c-00001", "elem-o-00001",
       "T-c-00001", "T-o-00001", "contig-c-00001", "contig-o-00001", "validate-00001", "copy-c-00001",
       "copy-o-00001", "compile-00001", "compile-00002"]
CATEGORIES = ("slice", "element", "transpose", "contig", "validate", "copy", "compile")


def cut(doc, ids):
    out = {k: v for k, v in doc.items() if k not in CATEGORIES + ("sources", "functions", "exports", "notes")}
    remap, sources, fns = {}, [], set()
    for cat in CATEGORIES:
        keep = []
        for c in doc.get(cat, []):
            if c["id"] not in ids:
                continue
            c = dict(c)
            for key in ("source", "dst", "src"):
                if isinstance(c.get(key), int):
                    if c[key] not in remap:
                        remap[c[key]] = len(sources)
                        sources.append(doc["sources"][c[key]])
                    c[key] = remap[c[key]]
            if "func" in c:
                fns.add(c["func"])
            keep.append(c)
        out[cat] = keep
    out["sources"] = sources
    out["functions"] = [f for f in doc.get("functions", []) if f["name"] in fns]
    out["notes"] = []
    return out


def main(sweep, releases):
    for x in releases:
        d = os.path.join(sweep, x)
        shutil.copy(os.path.join(d, "layouts.json"), os.path.join(HERE, "layouts-%s.json" % x))
        shutil.copy(os.path.join(d, "steps"), os.path.join(HERE, "steps-%s" % x))
        with open(os.path.join(d, "golden.json")) as f:
            doc = json.load(f)
        with open(os.path.join(HERE, "golden-%s.json" % x), "w") as f:
            json.dump(cut(doc, set(IDS)), f, sort_keys=True, indent=0)
            f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
