#!/usr/bin/env python3
"""Generate the live conformance fixtures from the golden generator's patterns.

The compiled slicing functions are the same as the golden vectors' (one source of truth:
golden/gen_pyx.py); they are compiled again here under top-level module names so that the
root build.rs builds them for every pinned release, and the conformance tests call them
through the embedded interpreter.

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


def main():
    out = {}
    spec = []
    for golden_module, live_module in (('golden_slice_s', 'live_slice_s'), ('golden_slice_g', 'live_slice_g')):
        out[live_module + '.pyx'] = gen_pyx.slice_pyx(golden_module)
    for f in gen_pyx.slice_funcs():
        spec.append(dict(name=f['name'], module=f['module'].replace('golden_', 'live_'),
                         decl=f['decl'], ndim=f['ndim'], pattern=f['pattern'], params=f['params']))
    core = [gen_pyx.HEADER]
    for n in (1, 2, 3, 4):
        core.append('def as_mv_%dd(%s v):\n    return v\n\n' % (n, gen_pyx.decl_text('generic', n)))
    out['live_core.pyx'] = ''.join(core)
    out['live_spec.json'] = json.dumps(spec, indent=0, sort_keys=True) + '\n'
    for name, text in sorted(out.items()):
        path = os.path.join(HERE, name)
        old = open(path).read() if os.path.exists(path) else None
        if old != text:
            with open(path, 'w') as fh:
                fh.write(text)


if __name__ == '__main__':
    main()
