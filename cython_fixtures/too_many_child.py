"""Child process of tests/too_many_items.rs: runs Python-level ``m[items]`` on Cython's plain
``memoryview`` class for the cases cyview refuses as Undefined (Cython may crash on them).

Usage: ``python too_many_child.py CASES.json START PAD``. ``CASES.json`` is a list of
``{"source": [<live_support function>, [args...]], "items": [...]}`` (items: ``["i", v]``,
``["s", start, stop, step]``, ``["N"]`` for None, ``["E"]`` for Ellipsis). Each case runs
once per padding of ``PADS`` (``padded.Padded``: identical within ``ndim``, different past
it), from case START, padding PAD on. Prints one JSON line per run, flushed at once:
``[case, pad, outcome]`` with outcome ``["err", type, message]``, ``["element", hex]`` or
``["view", shape, strides, suboffsets]``. A crash ends the process; the parent records it
and starts a new child after the crashed run.
"""
import json
import sys

import live_support
import padded

# (shape, stride, suboffset) written past ndim: extent 0 (every index out of bounds) versus
# an extent larger than any test index with stride 0 (every index stays on the element).
PADS = [(0, 0, -1), (1 << 41, 0, -1)]


def key(items):
    out = []
    for it in items:
        if it[0] == 'i':
            out.append(it[1])
        elif it[0] == 's':
            out.append(slice(it[1], it[2], it[3]))
        elif it[0] == 'N':
            out.append(None)
        else:
            out.append(Ellipsis)
    return tuple(out)


def outcome(m, k):
    try:
        r = m[k]
    except Exception as e:  # noqa: BLE001 - any exception is an outcome here
        return ['err', type(e).__name__, str(e)]
    if isinstance(r, tuple):
        # Cython's plain memoryview unpacks an element with `struct.unpack(format)`: a
        # 1-tuple for NumPy's '<d'.
        r, = r
    if isinstance(r, float):
        return ['element', r.hex()]
    return ['view', list(r.shape), list(r.strides), list(r.suboffsets)]


def main():
    cases = json.load(open(sys.argv[1]))
    start, pad = int(sys.argv[2]), int(sys.argv[3])
    for i in range(start, len(cases)):
        c = cases[i]
        name, args = c['source']
        obj = getattr(live_support, name)(*args)
        k = key(c['items'])
        for p in range(pad if i == start else 0, len(PADS)):
            m = padded.plain_memoryview(padded.Padded(obj, *PADS[p]))
            print(json.dumps([i, p, outcome(m, k)]), flush=True)


if __name__ == '__main__':
    main()
