#!/usr/bin/env python3
"""One golden file for every pinned Cython release: merge the per-release documents that
golden_run.py / formats_run.py write, and split the merged file back into them.

    releases.py merge --out FILE [--base FILE] [--releases X,Y,...] PER_RELEASE.json...
    releases.py split FILE RELEASE [--out FILE]

A per-release document is what a harness writes for one release (its "cython" key names
the release). The merged document holds each thing once:

* "releases": the releases it holds, oldest first.
* Every key whose value is the same for all releases, as it is (sources, functions, ...).
* Lists of cases (lists of objects with an "id"): a case that is the same for every release
  is written once, without "releases". A case that differs is written once per distinct
  value, each line beginning with "releases": [...], the releases it holds for (same "id").
* "by_release": {release: {key: value}} for the other keys that differ (the "cython" key,
  the notes that name a release). When every release has an object there, only the
  members that differ are listed; the others are under the key at the top level. A member
  that is a list of the same length for every release (a declaration's format-check
  results) is at the top level with the value most releases give at each position, and
  by_release lists only the positions where a release differs: {"<position>": value}.
* Format-check documents ("outcomes" + "results"): the outcome table is the sorted union of
  the releases' tables, and "results" refer to it, so one changed outcome changes one entry.

`split` gives back, for one release, a document equal (as JSON) to the harness's output
(with the outcome table of a format-check document being the union). `merge` checks this
for every release before it writes. The output is deterministic: sorted keys, one case
per line.

--base: a merged file whose releases are kept unless a PER_RELEASE file replaces them
(ci/gen-golden --cython X regenerates one release). --releases: the releases to write
(default: those of the inputs and the base); a listed release that neither has is an error.
"""
import argparse
import json
import os
import sys

RELEASES = 'releases'
BY_RELEASE = 'by_release'


def version_key(release):
    return tuple(int(p) if p.isdigit() else p for p in release.split('.'))


def canonical(o):
    return json.dumps(o, sort_keys=True, separators=(',', ':'))


def is_case_list(v):
    return isinstance(v, list) and v and all(isinstance(c, dict) and 'id' in c for c in v)


def union_outcomes(docs):
    """Format-check documents: results index one sorted union table."""
    if not all('outcomes' in d and 'results' in d for d in docs.values()):
        return docs
    table = sorted(set().union(*(d['outcomes'] for d in docs.values())))
    at = {o: n for n, o in enumerate(table)}
    out = {}
    for r, d in docs.items():
        old = d['outcomes']
        d = dict(d)
        d['results'] = {name: [None if i is None else at[old[i]] for i in res]
                        for name, res in d['results'].items()}
        d['outcomes'] = table
        out[r] = d
    return out


def merge(docs):
    """docs: {release: per-release document} -> merged document."""
    releases = sorted(docs, key=version_key)
    docs = union_outcomes(docs)
    merged = {RELEASES: releases}
    by_release = {r: {} for r in releases}
    keys = sorted(set().union(*(d.keys() for d in docs.values())))
    for k in keys:
        if k in (RELEASES, BY_RELEASE):
            raise SystemExit('releases.py: a per-release document has a %r key' % k)
        have = [r for r in releases if k in docs[r]]
        values = [docs[r][k] for r in have]
        if len(have) == len(releases) and all(v == values[0] for v in values):
            merged[k] = values[0]
        elif len(have) == len(releases) and all(is_case_list(v) for v in values):
            merged[k] = merge_cases(releases, [docs[r][k] for r in releases])
        elif len(have) == len(releases) and all(isinstance(v, dict) for v in values):
            common = {}
            for sub in sorted(set().union(*values)):
                subs = [v.get(sub, KeyError) for v in values]
                if all(s == subs[0] for s in subs) and subs[0] is not KeyError:
                    common[sub] = subs[0]
                elif all(isinstance(s, list) and len(s) == len(subs[0]) for s in subs):
                    # One list per release (a declaration's results): the value most releases
                    # give at each position, and per release the positions where it differs.
                    common[sub] = base = [majority([s[i] for s in subs])
                                          for i in range(len(subs[0]))]
                    for r, s in zip(releases, subs):
                        patch = {str(i): x for i, (x, b) in enumerate(zip(s, base)) if x != b}
                        if patch:
                            by_release[r].setdefault(k, {})[sub] = patch
                else:
                    for r, s in zip(releases, subs):
                        if s is not KeyError:
                            by_release[r].setdefault(k, {})[sub] = s
            merged[k] = common
        else:
            for r in have:
                by_release[r][k] = docs[r][k]
    merged[BY_RELEASE] = by_release
    for r in releases:
        if split(merged, r) != docs[r]:
            raise SystemExit('releases.py: internal error: splitting the merged document does '
                             'not give back release %s' % r)
    return merged


def majority(values):
    """The value most of `values` (one per release, oldest first) are; a tie goes to the
    newest release's."""
    texts = [canonical(v) for v in values]
    best = max(range(len(values)), key=lambda i: (texts.count(texts[i]), i))
    return values[best]


def merge_cases(releases, lists):
    order, seen = [], set()
    for cases in lists:
        for c in cases:
            if c['id'] not in seen:
                seen.add(c['id'])
                order.append(c['id'])
    by_id = [{c['id']: c for c in cases} for cases in lists]
    if any(len(m) != len(cases) for m, cases in zip(by_id, lists)):
        raise SystemExit('releases.py: a case id appears twice in one release')
    out = []
    for cid in order:
        variants = {}  # canonical text -> (case, [releases])
        for r, m in zip(releases, by_id):
            if cid in m:
                text = canonical(m[cid])
                variants.setdefault(text, (m[cid], []))[1].append(r)
        if len(variants) == 1 and len(next(iter(variants.values()))[1]) == len(releases):
            out.append(next(iter(variants.values()))[0])
            continue
        for case, rs in variants.values():
            if RELEASES in case:
                raise SystemExit('releases.py: case %s has a "releases" key' % cid)
            out.append(dict(case, **{RELEASES: rs}))
    return out


def split(merged, release):
    if release not in merged[RELEASES]:
        raise SystemExit('releases.py: no release %s in the golden file (it has %s)'
                         % (release, ', '.join(merged[RELEASES])))
    doc = {}
    for k, v in merged.items():
        if k in (RELEASES, BY_RELEASE):
            continue
        if is_case_list(v):
            doc[k] = [{f: x for f, x in c.items() if f != RELEASES}
                      for c in v if RELEASES not in c or release in c[RELEASES]]
        else:
            doc[k] = v
    for k, v in merged[BY_RELEASE].get(release, {}).items():
        if isinstance(doc.get(k), dict) and isinstance(v, dict):
            doc[k] = dict(doc[k])
            for sub, x in v.items():
                if isinstance(doc[k].get(sub), list) and isinstance(x, dict):
                    patched = list(doc[k][sub])
                    for i, value in x.items():
                        patched[int(i)] = value
                    doc[k][sub] = patched
                else:
                    doc[k][sub] = x
        else:
            doc[k] = v
    return doc


def case_line(c):
    if RELEASES in c:  # the releases first: what a reader needs before the rest
        rest = {f: x for f, x in c.items() if f != RELEASES}
        return '{"releases":%s,%s' % (canonical(c[RELEASES]), canonical(rest)[1:])
    return canonical(c)


def dumps(merged):
    """Sorted keys; one case, source, format or declaration per line."""
    lines = ['{']
    keys = sorted(merged)
    for n, k in enumerate(keys):
        v = merged[k]
        tail = ',' if n + 1 < len(keys) else ''
        if k != RELEASES and isinstance(v, list) and len(v) > 1 and all(isinstance(x, (dict, str)) for x in v):
            line = case_line if is_case_list(v) else canonical
            lines.append('%s: [' % json.dumps(k))
            lines.append(',\n'.join(line(x) for x in v))
            lines.append(']' + tail)
        elif isinstance(v, dict) and v:
            lines.append('%s: {' % json.dumps(k))
            lines.append(',\n'.join('%s: %s' % (json.dumps(s), canonical(v[s])) for s in sorted(v)))
            lines.append('}' + tail)
        else:
            lines.append('%s: %s%s' % (json.dumps(k), canonical(v), tail))
    lines.append('}')
    return '\n'.join(lines) + '\n'


def load(path):
    with open(path, encoding='utf-8') as fh:
        return json.load(fh)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = ap.add_subparsers(dest='cmd', required=True)
    m = sub.add_parser('merge')
    m.add_argument('--out', required=True)
    m.add_argument('--base')
    m.add_argument('--releases')
    m.add_argument('inputs', nargs='*')
    s = sub.add_parser('split')
    s.add_argument('file')
    s.add_argument('release')
    s.add_argument('--out')
    a = ap.parse_args(argv)
    if a.cmd == 'split':
        text = json.dumps(split(load(a.file), a.release), sort_keys=True, indent=0) + '\n'
        if a.out:
            with open(a.out, 'w', encoding='utf-8') as fh:
                fh.write(text)
        else:
            sys.stdout.write(text)
        return
    docs = {}
    if a.base and os.path.exists(a.base):
        base = load(a.base)
        for r in base[RELEASES]:
            docs[r] = split(base, r)
    for path in a.inputs:
        doc = load(path)
        docs[doc['cython']] = doc
    if a.releases:
        wanted = [r for r in a.releases.split(',') if r]
        missing = [r for r in wanted if r not in docs]
        if missing:
            raise SystemExit('releases.py: no golden vectors for %s: regenerate them'
                             % ', '.join(missing))
        docs = {r: docs[r] for r in wanted}
    if not docs:
        raise SystemExit('releases.py: nothing to merge')
    text = dumps(merge(docs))
    tmp = a.out + '.tmp'
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(tmp, 'w', encoding='utf-8') as fh:
        fh.write(text)
    os.replace(tmp, a.out)


if __name__ == '__main__':
    main(sys.argv[1:])
