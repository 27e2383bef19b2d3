#!/usr/bin/env python3
"""Generate the live conformance fixtures from the golden generator's patterns.

The compiled slicing functions are the golden vectors' (one source of truth:
golden/gen_pyx.py) and are written once, here at the top level: the root build.rs builds them
for every pinned release (the conformance tests call them through the embedded interpreter)
and ci/gen-golden compiles the same files for the golden vectors.

Usage:  python3 gen_live.py [--out DIR]     (default: the directory of this file)

Writes (deterministically):
  live_slice_s.pyx   compiled slicing, strided declarations
  live_slice_g.pyx   compiled slicing, generic / generic-first declarations
  live_core.pyx      as_mv_Nd (Python-level memoryview objects of any exporter)
  live_spec.json     every slicing function: name, module, decl, ndim, pattern, params
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'golden'))
import gen_pyx  # noqa: E402


def main(outdir=HERE):
    out = {}
    spec = []
    for module in ('live_slice_s', 'live_slice_g'):
        out[module + '.pyx'] = gen_pyx.slice_pyx(module)
    for f in gen_pyx.slice_funcs():
        spec.append(dict(name=f['name'], module=f['module'],
                         decl=f['decl'], ndim=f['ndim'], pattern=f['pattern'], params=f['params']))
    core = [gen_pyx.HEADER]
    for n in (1, 2, 3, 4):
        core.append('def as_mv_%dd(%s v):\n    return v\n\n' % (n, gen_pyx.decl_text('generic', n)))
    out['live_core.pyx'] = ''.join(core)
    out['live_spec.json'] = json.dumps(spec, indent=0, sort_keys=True) + '\n'
    for name, text in sorted(out.items()):
        path = os.path.join(outdir, name)
        old = open(path).read() if os.path.exists(path) else None
        if old != text:
            with open(path, 'w') as fh:
                fh.write(text)


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == '--out':
        main(sys.argv[2])
    elif len(sys.argv) == 1:
        main()
    else:
        sys.exit('usage: gen_live.py [--out DIR]')
