#!/usr/bin/env python3
"""Golden-vector harness: runs the compiled fixtures of one Cython release and
writes crates/cyview/tests/golden/cython-<X>.json.

Run with the venv's python (Cython + numpy installed), after the modules of
gen_pyx.py have been compiled into BUILD (see ci/gen-golden):

    golden_run.py run    --build BUILD --cython X --out FILE [--no-compiled-slices]
                         [--sample K | --compile-only]
    golden_run.py worker --build BUILD          (internal: executes tasks)
    golden_run.py probe  --build BUILD          (internal: compile probes)

--compile-only runs the compile probes alone (Cython without a C compiler: for a release
whose C does not compile). --sample K keeps every K-th case of each id series (ids as in the
full set) and every case with too many indices. --no-compiled-slices leaves out the compiled slicing cases (the modules live_slice_s and
live_slice_g need not be built): the subset ci/sweep runs for every Cython release.

Every observation is made in worker subprocesses, so a Cython crash (SIGSEGV)
is recorded as {"crash": ...} for the task that caused it instead of killing
the generator.  Everything recorded is relative to a memory block start, so
the output does not depend on where the allocator put things.
"""
import contextlib
import ctypes
import io
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cspecs  # noqa: E402
import gen_pyx  # noqa: E402

# ===================================================================== ctypes
from ctypes import POINTER, byref, c_char_p, c_int, c_ssize_t, c_void_p  # noqa: E402


class Py_buffer(ctypes.Structure):
    _fields_ = [('buf', c_void_p), ('obj', c_void_p), ('len', c_ssize_t),
                ('itemsize', c_ssize_t), ('readonly', c_int), ('ndim', c_int),
                ('format', c_char_p), ('shape', POINTER(c_ssize_t)),
                ('strides', POINTER(c_ssize_t)), ('suboffsets', POINTER(c_ssize_t)),
                ('internal', c_void_p)]


_GetBuffer = ctypes.pythonapi.PyObject_GetBuffer
_GetBuffer.argtypes = [ctypes.py_object, POINTER(Py_buffer), c_int]
_GetBuffer.restype = c_int
_Release = ctypes.pythonapi.PyBuffer_Release
_Release.argtypes = [POINTER(Py_buffer)]
_Release.restype = None

from cspecs import (  # noqa: E402,F401  (the flag names are used below)
    C_CONSTANTS, PyBUF_ANY_CONTIGUOUS, PyBUF_C_CONTIGUOUS, PyBUF_F_CONTIGUOUS, PyBUF_FORMAT,
    PyBUF_INDIRECT, PyBUF_ND, PyBUF_STRIDES, PyBUF_WRITABLE)

PyBUF_FULL_RO = PyBUF_INDIRECT | PyBUF_FORMAT          # 0x11c
PyBUF_RECORDS_RO = PyBUF_STRIDES | PyBUF_FORMAT        # 0x1c

MAX_ELEMENTS = 20000     # never enumerate more elements than this for one view


def err_record(e):
    return {'kind': type(e).__name__, 'message': str(e)}


def read_buffer(obj, flags, arrays=True):
    """PyObject_GetBuffer(obj, flags) -> plain dict (addresses absolute)."""
    b = Py_buffer()
    _GetBuffer(obj, byref(b), flags)
    try:
        nd = b.ndim
        r = {'buf': b.buf or 0, 'ndim': nd, 'itemsize': b.itemsize, 'readonly': b.readonly,
             'format': b.format.decode() if b.format else None, 'len': b.len}
        if arrays and 0 <= nd <= 8:
            r['shape'] = [b.shape[i] for i in range(nd)] if b.shape else None
            r['strides'] = [b.strides[i] for i in range(nd)] if b.strides else None
            r['suboffsets'] = [b.suboffsets[i] for i in range(nd)] if b.suboffsets else None
            # For Cython's _memoryviewslice, view.shape points into from_slice.shape
            # of the __Pyx_memviewslice {memview; data; shape[8]; strides[8]; suboffsets[8]}.
            r['_shape_ptr'] = ctypes.cast(b.shape, c_void_p).value if b.shape else None
        return r
    finally:
        _Release(byref(b))


def raw_slice_suboffsets(obj, info):
    """The raw __Pyx_memviewslice.suboffsets[:ndim] behind a _memoryviewslice."""
    if type(obj).__name__ != '_memoryviewslice' or not info.get('_shape_ptr'):
        return None
    sp = info['_shape_ptr']
    data = c_void_p.from_address(sp - 8).value or 0
    if data != info['buf']:
        return None
    return [c_ssize_t.from_address(sp + 128 + 8 * i).value for i in range(info['ndim'])]


# ==================================================================== sources
class Memory:
    """A memory block: start address, length, pointer slots, fill rule.
    Fill rule: every non-pointer slot of `elem` bytes at offset o holds the
    value o // elem (as float64 for 'f8', float32 'f4', int64 'i8')."""

    def __init__(self, start, length, pointers, elem, fill, keep):
        self.start = start
        self.len = length
        self.pointers = pointers      # {slot_offset: target_offset}
        self.elem = elem
        self.fill = fill
        self.keep = keep

    def read_value(self, off):
        a = self.start + off
        if self.fill == 'f8':
            return ctypes.c_double.from_address(a).value
        if self.fill == 'f4':
            return ctypes.c_float.from_address(a).value
        return ctypes.c_int64.from_address(a).value

    def verify(self):
        for off in range(0, self.len, self.elem):
            if off in self.pointers:
                got = c_void_p.from_address(self.start + off).value
                assert got == self.start + self.pointers[off], 'pointer slot %d' % off
            else:
                v = self.read_value(off)
                assert v == off // self.elem, 'memory fill mismatch at %d: %r' % (off, v)


def _np():
    import numpy
    return numpy


def build_np_base(recipe):
    np = _np()
    dtype = {'f8': np.float64, 'f4': np.float32, 'i8': np.int64}[recipe.get('dtype', 'f8')]
    base = np.arange(recipe['n'], dtype=dtype)
    mem = Memory(base.ctypes.data, base.nbytes, {}, base.itemsize,
                 recipe.get('dtype', 'f8'), [base])
    return base, mem


def np_view(base, recipe):
    np = _np()
    off = recipe['off']
    arr = np.lib.stride_tricks.as_strided(base[off:], shape=tuple(recipe['shape']),
                                          strides=tuple(recipe['strides']),
                                          writeable=not recipe.get('ro', False))
    return arr


def _tb():
    import _testbuffer
    return _testbuffer


def tb_make(recipe, items):
    tb = _tb()
    flags = 0
    for f in recipe.get('flags', []):
        flags |= getattr(tb, 'ND_' + f)
    kw = dict(shape=recipe['shape'], format='d', flags=flags)
    if recipe.get('strides') is not None:
        kw['strides'] = recipe['strides']
        kw['offset'] = recipe.get('offset', 0)
    return tb.ndarray(items, **kw)


def _walk(info, visit_slot=None):
    """Yield (c_order_index, absolute address) of every element described by a
    Py_buffer dict; pointer slots are dereferenced in-process (only call this
    on exporters we trust, i.e. to *discover* the layout of a source)."""
    nd = info['ndim']
    shape, strides = info['shape'], info['strides']
    subs = info['suboffsets'] or [-1] * nd
    total = 1
    for s in shape:
        total *= s
    for flat in range(total):
        idx = []
        rem = flat
        for s in reversed(shape):
            idx.append(rem % s)
            rem //= s
        idx.reverse()
        p = info['buf']
        for d in range(nd):
            p += idx[d] * strides[d]
            if subs[d] >= 0:
                tgt = c_void_p.from_address(p).value
                if visit_slot:
                    visit_slot(p, tgt)
                p = tgt + subs[d]
        yield flat, p


def build_tb(recipe):
    """_testbuffer.ndarray source. Two passes: discover the layout, then rebuild
    with item values chosen so that the fill rule (slot o holds o/8) holds."""
    nitems = recipe['nitems']
    first = tb_make(recipe, [float(k) for k in range(nitems)])
    info = read_buffer(first, PyBUF_FULL_RO)
    pil = info['suboffsets'] is not None and any(s >= 0 for s in info['suboffsets'])
    slots = {}
    addr_of_item = {}
    for _flat, addr in _walk(info, lambda p, t: slots.__setitem__(p, t)):
        addr_of_item[int(ctypes.c_double.from_address(addr).value)] = addr
    lo = [info['buf']] if info['shape'] and all(info['shape']) else []
    hi = []
    if not pil:
        start0 = info['buf'] - recipe.get('offset', 0)
        for k in range(nitems):
            a = start0 + 8 * k
            assert ctypes.c_double.from_address(a).value == k
            addr_of_item[k] = a
    lo += list(slots) + list(addr_of_item.values())
    hi += [s + 8 for s in slots] + [a + 8 for a in addr_of_item.values()]
    start, end = min(lo), max(hi)
    assert len(addr_of_item) == nitems, 'items not all reachable'
    items = [0.0] * nitems
    for k, a in addr_of_item.items():
        assert (a - start) % 8 == 0
        items[k] = float((a - start) // 8)
    # second pass with the final values
    arr = tb_make(recipe, items)
    info2 = read_buffer(arr, PyBUF_FULL_RO)
    start2 = info2['buf'] - (info['buf'] - start)
    slots2 = {}
    for _ in _walk(info2, lambda p, t: slots2.__setitem__(p - start2, t - start2)):
        pass
    covered = set()
    for s in slots2:
        covered.add(s)
    for k in range(nitems):
        covered.add(int(items[k]) * 8)
    gaps = [o for o in range(0, end - start, 8) if o not in covered]
    mem = Memory(start2, end - start, slots2, 8, 'f8', [arr])
    mem.gaps = gaps
    exporter = arr
    if recipe.get('slice'):
        exporter = arr[tuple(slice(*s) for s in recipe['slice'])]
        mem.keep.append(exporter)
    return exporter, mem


class Env:
    """Worker-side environment: compiled modules and exporter cache."""

    def __init__(self, build):
        sys.path.insert(0, build)
        import golden_core
        import golden_validate
        try:
            import live_slice_g
            import live_slice_s
        except ImportError:     # not built: run with --no-compiled-slices
            live_slice_g = live_slice_s = None
        self.mods = {'golden_core': golden_core, 'live_slice_s': live_slice_s,
                     'live_slice_g': live_slice_g, 'golden_validate': golden_validate}
        self.cache = {}

    def func(self, name):
        mod, fn = name.split('.')
        return getattr(self.mods[mod], fn)

    def build(self, recipe, fresh=False):
        key = json.dumps(recipe, sort_keys=True)
        if not fresh and key in self.cache:
            return self.cache[key]
        t = recipe['t']
        if t == 'np':
            base, mem = build_np_base(recipe)
            exp = np_view(base, recipe)
        elif t == 'tb':
            exp, mem = build_tb(recipe)
        elif t == 'cymv':
            inner, mem = self.build(recipe['of'], fresh)
            m = self.as_mv(inner)
            exp = m[make_index(recipe['index'], False)] if recipe.get('index') else m
            mem = Memory(mem.start, mem.len, mem.pointers, mem.elem, mem.fill, mem.keep + [exp])
        else:
            raise ValueError(t)
        if recipe['t'] != 'cymv':
            mem.verify()
        if not fresh:
            self.cache[key] = (exp, mem)
        return exp, mem

    def as_mv(self, exporter):
        nd = read_buffer(exporter, PyBUF_FULL_RO, arrays=False)['ndim']
        return getattr(self.mods['golden_core'], 'as_mv_%dd' % nd)(exporter)


# =============================================================== observation
def source_record(obj, mem):
    info = read_buffer(obj, PyBUF_FULL_RO)
    nd = info['ndim']
    rec = {
        'memory_len': mem.len,
        'pointers': [[s, mem.pointers[s]] for s in sorted(mem.pointers)],
        'data': info['buf'] - mem.start,
        'ndim': nd,
        'shape': info['shape'],
        'strides': info['strides'],
        'suboffsets': info['suboffsets'] or [-1] * nd,
        'itemsize': info['itemsize'],
        'format': info['format'],
        'readonly': bool(info['readonly']),
        'fill': mem.fill,
    }
    if getattr(mem, 'gaps', None):
        rec['memory_gaps'] = mem.gaps
    return rec


class Stats:
    oob_elements = 0
    unresolved = 0


def element_offsets(info, mem, stats):
    """Offsets (relative to mem.start) of every element in C order, following
    strides and suboffsets as PEP 3118 says.  Pointer slots are looked up in
    the memory description (never dereferenced blindly): an indirection through
    a slot that is not a known pointer gives None."""
    nd = info['ndim']
    shape, strides = info['shape'], info['strides']
    subs = info['suboffsets'] or [-1] * nd
    total = 1
    for s in shape:
        total *= max(s, 0)
    if total > MAX_ELEMENTS:
        return None
    out = []
    for flat in range(total):
        idx = []
        rem = flat
        for s in reversed(shape):
            idx.append(rem % s)
            rem //= s
        idx.reverse()
        off = info['buf'] - mem.start
        for d in range(nd):
            off += idx[d] * strides[d]
            if subs[d] >= 0:
                if off not in mem.pointers:
                    off = None
                    break
                off = mem.pointers[off] + subs[d]
        if off is None:
            stats.unresolved += 1
            out.append(None)
            continue
        check_element(off, mem, stats)
        out.append(off)
    return out


def check_element(off, mem, stats):
    """Cross-check an element offset against the value stored there."""
    if 0 <= off <= mem.len - mem.elem and off not in mem.pointers:
        if off % mem.elem == 0:
            v = mem.read_value(off)
            assert v == off // mem.elem, 'value mismatch at %d: %r' % (off, v)
    else:
        stats.oob_elements += 1


def view_record(obj, mem, stats, with_elements=True):
    info = read_buffer(obj, PyBUF_FULL_RO)
    nd = info['ndim']
    if nd > 8:
        return {'ub': {'ndim': nd, 'reason': 'result ndim > 8: Cython indexed past the 8-entry '
                       'shape/strides/suboffsets arrays; values are not deterministic'}}
    rec = {'data': info['buf'] - mem.start, 'ndim': nd, 'shape': info['shape'],
           'strides': info['strides'], 'suboffsets': info['suboffsets'] or [-1] * nd}
    raw = raw_slice_suboffsets(obj, info)
    if raw is not None and raw != rec['suboffsets']:
        rec['slice_suboffsets'] = raw
    if with_elements:
        els = element_offsets(info, mem, stats)
        if els is None:
            rec['elements'] = None
            rec['elements_omitted'] = True
        else:
            rec['elements'] = els
            independent_check(obj, els, mem)
    return {'ok': rec}


def _flatten(x):
    if isinstance(x, list):
        for y in x:
            yield from _flatten(y)
    else:
        yield x


def independent_check(obj, els, mem):
    """Re-read the view with CPython's _testbuffer (its own PEP 3118 traversal,
    suboffsets included) and compare the values with our element offsets.
    Only done when every element lies in the memory block (reading is safe)."""
    if mem.fill != 'f8' or not els:
        return
    if any(e is None or e < 0 or e + 8 > mem.len or e in mem.pointers for e in els):
        return
    tb = _tb()
    nd = tb.ndarray(obj, getbuf=PyBUF_FULL_RO)
    vals = list(_flatten(nd.tolist())) if nd.ndim else [nd.tolist()]
    assert [int(v) * 8 for v in vals] == els, 'independent traversal disagrees'


def make_item(it):
    if 'i' in it:
        return it['i']
    if 's' in it:
        return slice(*it['s'])
    if it.get('newaxis'):
        return None
    if it.get('ellipsis'):
        return Ellipsis
    if 'other' in it:
        return eval(it['other'], {'numpy': _np()})
    raise ValueError(it)


def make_index(items, bare):
    objs = [make_item(it) for it in items]
    if bare:
        assert len(objs) == 1
        return objs[0]
    return tuple(objs)


def result_expect(r, mem, stats):
    if isinstance(r, float):
        off = int(r) * 8
        if r != int(r) or not (0 <= off < mem.len):
            return {'element_value': r}
        check_element(off, mem, stats)
        return {'element': off}
    return view_record(r, mem, stats)


# ==================================================================== worker
def run_task(env, t, stats):
    op = t['op']
    if op == 'source':
        exp, mem = env.build(t['recipe'])
        rec = source_record(exp, mem)
        rec['exporter'] = {'np': 'numpy', 'tb': '_testbuffer', 'cymv': 'cython'}[t['recipe']['t']]
        return {'source': rec}

    if op == 'obj_index':
        exp, mem = env.build(t['recipe'])
        m = env.as_mv(exp)
        try:
            r = m[make_index(t['index'], t.get('bare', False))]
        except Exception as e:
            return {'err': err_record(e)}
        return result_expect(r, mem, stats)

    if op == 'call':            # compiled function f(exporter, *args)
        exp, mem = env.build(t['recipe'])
        f = env.func(t['func'])
        try:
            r = f(exp, *t.get('args', []))
        except Exception as e:
            return {'err': err_record(e)}
        kind = t['result']
        if kind == 'view':
            return view_record(r, mem, stats)
        if kind == 'addr':
            off = r - mem.start
            check_element(off, mem, stats)
            return {'element': off}
        if kind == 'contig':
            return {'ok': {'c_contig': bool(r[0]), 'f_contig': bool(r[1])}}
        if kind == 'copy':
            return copy_record(r)
        raise ValueError(kind)

    if op == 'obj_method':      # Python-level m.T / m.is_c_contig() / m.copy()
        exp, mem = env.build(t['recipe'])
        m = env.as_mv(exp)
        try:
            if t['method'] == 'T':
                return view_record(m.T, mem, stats)
            if t['method'] == 'contig':
                return {'ok': {'c_contig': bool(m.is_c_contig()), 'f_contig': bool(m.is_f_contig())}}
            if t['method'] in ('copy', 'copy_fortran'):
                return copy_record(getattr(m, t['method'])())
        except Exception as e:
            return {'err': err_record(e)}
        raise ValueError(t['method'])

    if op == 'validate':
        exp, mem = env.build(t['recipe'])
        out = {}
        try:
            info = read_buffer(exp, t['request'])
            out['exported'] = {'ok': {
                'data': info['buf'] - mem.start, 'ndim': info['ndim'], 'shape': info['shape'],
                'strides': info['strides'],
                'suboffsets': info['suboffsets'] or [-1] * info['ndim'],
                'itemsize': info['itemsize'], 'format': info['format'],
                'readonly': bool(info['readonly'])}}
        except Exception as e:
            out['exported'] = {'err': err_record(e)}
        try:
            r = env.func(t['func'])(exp)
        except Exception as e:
            out['expect'] = {'err': err_record(e)}
            return out
        out['expect'] = view_record(r, mem, stats, with_elements=False)
        return out

    if op == 'assign':
        if t['shared']:
            base, mem = build_np_base(t['dst'])
            dst = np_view(base, t['dst'])
            src = np_view(base, t['src'])
        else:
            base, mem = build_np_base(t['dst'])
            dst = np_view(base, t['dst'])
            src, _smem = env.build(t['src'], fresh=True)
        try:
            if t['path'] == 'compiled':
                env.func(t['func'])(dst, src)
            else:
                md = env.as_mv(dst)
                ms = env.as_mv(src)
                md[...] = ms
        except Exception as e:
            return {'err': err_record(e), 'memory': [float(x) for x in base]}
        return {'ok': {'memory': [float(x) for x in base]}}

    raise ValueError(op)


def copy_record(r):
    info = read_buffer(r, PyBUF_FULL_RO)
    nd = info['ndim']
    values = []
    for _flat, addr in _walk(info):
        values.append(ctypes.c_double.from_address(addr).value)
    return {'ok': {'ndim': nd, 'shape': info['shape'], 'strides': info['strides'],
                   'suboffsets': info['suboffsets'] or [-1] * nd, 'values': values,
                   'type': type(r).__name__}}


def worker_main(build):
    env = Env(build)
    stats = Stats()
    out = sys.stdout
    for line in sys.stdin:
        t = json.loads(line)
        try:
            res = run_task(env, t['task'], stats)
        except Exception:
            res = {'harness_error': traceback.format_exc()}
        res = {'id': t['id'], 'res': res,
               'stats': [stats.oob_elements, stats.unresolved]}
        stats.oob_elements = stats.unresolved = 0
        out.write(json.dumps(res) + '\n')
        out.flush()


# ===================================================================== probes
def probe_main(build):
    from Cython.Compiler import Errors, Main
    pdir = os.path.join(build, 'probes')
    results = {}
    for p in gen_pyx.probe_list():
        path = os.path.join(pdir, p['name'] + '.pyx')
        opts = Main.CompilationOptions(Main.default_options)
        opts.language_level = 3
        opts.output_file = os.path.join(pdir, p['name'] + '.c')
        buf = io.StringIO()
        exc = None
        nerr = 0
        with contextlib.redirect_stderr(buf), contextlib.redirect_stdout(buf):
            try:
                res = Main.compile_single(path, opts, full_module_name=p['name'])
                nerr = res.num_errors
            except Errors.CompileError as e:
                nerr = -1
                exc = e
            except Exception as e:  # Cython internal failure after an error()
                nerr = -1
                exc = e
        msgs = []
        text = buf.getvalue()
        for line in text.splitlines():
            m = re.match(r'^\S*\.pyx:\d+:\d+: (.*)$', line)
            if m and m.group(1) not in msgs:
                msgs.append(m.group(1))
        if nerr == 0 and not msgs:
            results[p['name']] = {'compiled': True}
        else:
            r = {'err': {'kind': 'CompileError', 'message': msgs[0] if msgs else repr(exc)}}
            if len(msgs) > 1:
                r['err']['more'] = msgs[1:]
            if 'Compiler crash' in r['err']['message']:
                tail = [l for l in text.splitlines() if re.match(r'^[A-Za-z_.]*(Error|Exception): ', l)]
                if tail:
                    r['err']['cause'] = tail[-1]
            results[p['name']] = r
    sys.stdout.write(json.dumps(results, sort_keys=True))


# ================================================================== scheduler
class WorkerPool:
    def __init__(self, build, nworkers=2):
        self.build = build
        self.n = nworkers
        self.crashes = []

    def _spawn(self):
        import tempfile
        err = tempfile.TemporaryFile(mode='w+')
        p = subprocess.Popen([sys.executable, os.path.abspath(__file__), 'worker',
                              '--build', self.build],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=err, text=True, bufsize=1)
        p.errfile = err
        return p

    def run(self, tasks):
        """tasks: list of task dicts. Returns list of results (same order)."""
        if not tasks:
            self.oob_elements = self.unresolved = 0
            return []
        results = [None] * len(tasks)
        stats = [0, 0]
        lock = threading.Lock()

        def drive(indices):
            proc = self._spawn()
            for i in indices:
                msg = json.dumps({'id': i, 'task': tasks[i]}) + '\n'
                line = ''
                try:
                    proc.stdin.write(msg)
                    proc.stdin.flush()
                    line = proc.stdout.readline()
                except BrokenPipeError:
                    line = ''
                if not line:
                    rc = proc.wait()
                    if not tasks[i].get('risky'):
                        proc.errfile.seek(0)
                        sys.stderr.write('worker died (rc=%s) on a task not marked risky: %r\n%s\n'
                                         % (rc, tasks[i], proc.errfile.read()[-3000:]))
                        os._exit(3)
                    results[i] = {'crash': {'returncode': rc,
                                            'signal': -rc if rc < 0 else None}}
                    with lock:
                        self.crashes.append((i, rc))
                    proc = self._spawn()
                    continue
                r = json.loads(line)
                assert r['id'] == i
                res = r['res']
                if 'harness_error' in res:
                    sys.stderr.write('harness error in task %r:\n%s\n' % (tasks[i], res['harness_error']))
                    os._exit(3)
                results[i] = res
                with lock:
                    stats[0] += r['stats'][0]
                    stats[1] += r['stats'][1]
                if 'ub' in res:
                    # the worker's stack may be corrupted: start a fresh one
                    proc.stdin.close()
                    proc.wait()
                    proc = self._spawn()
            proc.stdin.close()
            proc.wait()

        chunks = [list(range(k, len(tasks), self.n)) for k in range(self.n)]
        threads = [threading.Thread(target=drive, args=(c,)) for c in chunks]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.oob_elements, self.unresolved = stats
        return results


# ============================================================ case generation
AB = [-7, -3, -1, 0, 1, 2, 3, 5, 7]
STEPS = [-3, -2, -1, 0, 1, 2, 3]
IDX = [-7, -6, -5, -3, -1, 0, 1, 2, 4, 5, 7]
FAR = [-2 ** 40, -1000, 1000, 2 ** 40]
N_DIRECT = 320           # float64 slots in the base array of random direct sources


def np_recipe(shape, estrides, off, n=N_DIRECT, dtype='f8', ro=False):
    isz = {'f8': 8, 'f4': 4, 'i8': 8}[dtype]
    r = {'t': 'np', 'n': n, 'off': off, 'shape': list(shape),
         'strides': [s * isz for s in estrides]}
    if dtype != 'f8':
        r['dtype'] = dtype
    if ro:
        r['ro'] = True
    return r


def fit_offset(rng, shape, estrides, n):
    lo = hi = 0
    for e, s in zip(shape, estrides):
        if e > 0:
            lo += min(0, (e - 1) * s)
            hi += max(0, (e - 1) * s)
    a, b = -lo, n - 1 - hi
    assert a <= b, (shape, estrides)
    return rng.randint(a, b)


def rand_shape(rng, ndim, max_ext=4, zero=True):
    choices = ([0] if zero else []) + [1, 1] + list(range(2, max_ext + 1)) * 3
    return [rng.choice(choices) for _ in range(ndim)]


def rand_direct(rng, ndim, max_ext=4, zero=True):
    shape = rand_shape(rng, ndim, max_ext, zero)
    mode = rng.random()
    if mode < 0.2:      # C contiguous
        st, acc = [], 1
        for e in reversed(shape):
            st.append(acc)
            acc *= max(e, 1)
        est = list(reversed(st))
    elif mode < 0.3:    # Fortran contiguous
        est, acc = [], 1
        for e in shape:
            est.append(acc)
            acc *= max(e, 1)
    else:
        est = []
        for _ in range(ndim):
            if rng.random() < 0.06:
                est.append(0)
            else:
                est.append(rng.choice([-1, 1]) * rng.randint(1, 6))
    return np_recipe(shape, est, fit_offset(rng, shape, est, N_DIRECT))


def tb_strided(shape, est, flags=('WRITABLE',)):
    """_testbuffer.ndarray with exact strides (numpy normalises the exported
    strides of contiguous arrays, e.g. on extent-1 axes; _testbuffer does not)."""
    lo = hi = 0
    for e, st in zip(shape, est):
        if e > 0:
            lo += min(0, (e - 1) * st)
            hi += max(0, (e - 1) * st)
    return {'t': 'tb', 'shape': list(shape), 'nitems': hi - lo + 1,
            'strides': [8 * st for st in est], 'offset': -8 * lo, 'flags': list(flags)}


def pil_recipe(shape, sl=None, flags=('PIL', 'WRITABLE')):
    n = 1
    for e in shape:
        n *= e
    r = {'t': 'tb', 'shape': list(shape), 'nitems': n, 'flags': list(flags)}
    if sl:
        r['slice'] = sl
    return r


def rand_pil(rng, ndim, max_ext=4):
    shape = [rng.randint(1, max_ext) for _ in range(ndim)]
    sl = None
    if rng.random() < 0.6:
        sl = []
        for e in shape:
            step = rng.choice([None, 1, 2, -1, -2, None])
            start = rng.choice([None, 0, 1, e - 1, -1])
            stop = rng.choice([None, None, e, 1, -e - 1])
            sl.append([start, stop, step])
    return pil_recipe(shape, sl)


def item_for(tok, vals):
    """Build a JSON index item for pattern token `tok` from a value dict."""
    if tok == 'i':
        return {'i': vals['i']}
    if tok == 'N':
        return {'newaxis': True}
    if tok == 'E':
        return {'ellipsis': True}
    if tok == ':':
        return {'s': [None, None, None]}
    parts = tok.split(':')
    parts += [''] * (3 - len(parts))
    return {'s': [vals[l] if p else None for l, p in zip('abc', parts)]}


def compiled_values(rng, pattern, far=0.05):
    """Random runtime values for each parameter of a pattern."""
    args, items = [], []
    for pos, tok in enumerate(pattern):
        vals = {}
        if tok == 'i':
            vals['i'] = rng.choice(IDX) if rng.random() > far else rng.choice(FAR)
        elif tok not in ('N', 'E', ':'):
            parts = tok.split(':') + [''] * 2
            for l, p in zip('abc', parts[:3]):
                if not p:
                    continue
                if l == 'c':
                    vals[l] = rng.choice(STEPS) if rng.random() > far else rng.choice([-1000, 1000, 2 ** 40])
                else:
                    vals[l] = rng.choice(AB) if rng.random() > far else rng.choice(FAR)
        items.append(item_for(tok, vals))
    for p in gen_pyx.pattern_params(pattern):
        letter, pos = p[0], int(p[1:])
        it = items[pos]
        args.append(it['i'] if letter == 'i' else it['s']['abc'.index(letter)])
    return args, items


class Gen:
    """Builds the task lists of every category (deterministic)."""

    def __init__(self):
        self.spec = gen_pyx.build_spec()
        # shared pools of random sources (keeps the number of distinct sources small)
        prng = random.Random(7)
        self.pool_d = {nd: [rand_direct(prng, nd, max_ext=4 if nd < 4 else 3) for _ in range(60)]
                       for nd in (1, 2, 3, 4)}
        self.pool_p = {nd: [rand_pil(prng, nd, max_ext=4 if nd < 4 else 3) for _ in range(16)]
                       for nd in (1, 2, 3, 4)}
        self.tasks = []       # (category, case_dict, task)

    def D(self, rng, nd, nonempty=False):
        pool = self.pool_d[nd]
        if nonempty:
            pool = [r for r in pool if all(r['shape'])]
        return rng.choice(pool)

    def P(self, rng, nd):
        return rng.choice(self.pool_p[nd])

    def add(self, cat, case, task):
        self.tasks.append((cat, case, task))

    # ----------------------------------------------------------- A: object
    def slice_object(self):
        rng = random.Random(101)
        one_d = {e: np_recipe([e], [1], 32, n=64) for e in range(6)}
        # A1: 1-d grid of slices
        SS = [None, -2 ** 40, -6, -1, 0, 1, 4, 6, 2 ** 40]
        TT = [None, -2 ** 40, -2, -1, 0, 1, 3, 2 ** 40]
        for e in (0, 5):
            for a in SS:
                for b in SS:
                    for c in TT:
                        self._obj(one_d[e], 1, [{'s': [a, b, c]}])
        for a in [None, -6, -1, 0, 1, 6]:
            for b in [None, -6, -1, 0, 1, 6]:
                for c in [None, -2, -1, 1, 2]:
                    self._obj(one_d[2], 1, [{'s': [a, b, c]}])
        neg = np_recipe([5], [-2], 40, n=64)
        for a in [None, -6, -1, 0, 2, 4, 5, 1000]:
            for b in [None, -6, -1, 0, 2, 5, 1000]:
                for c in [None, -2, -1, 1, 3]:
                    self._obj(neg, 1, [{'s': [a, b, c]}])
        # A2: 1-d integer indices, bare and in a tuple; overflow
        for e in range(6):
            for i in sorted({0, 1, -1, e - 1, e, -e, -e - 1, 1000, -1000, 2 ** 40, -2 ** 40,
                             2 ** 63, -2 ** 63 - 1}):
                self._obj(one_d[e], 1, [{'i': i}], bare=True)
                self._obj(one_d[e], 1, [{'i': i}])
            self._obj(one_d[e], 1, [{'s': [2 ** 63, None, None]}])
            self._obj(one_d[e], 1, [{'s': [None, None, -2 ** 63 - 1]}])
        # A3: bad index types
        pil1 = pil_recipe([5])
        for other in ['1.5', "'a'", '[0]', 'numpy.int64(2)', 'True', 'slice(1.5, None, None)',
                      "slice('a', None, None)", 'slice(None, None, 2.0)', 'numpy.float64(1.0)',
                      '(1, 2)', 'b"x"', 'numpy.int32(-1)']:
            for src, nd in ((one_d[5], 1), (self._d2, 2)):
                self._obj(src, nd, [{'other': other}], bare=True)
                self._obj(src, nd, [{'other': other}, {'i': 0}])
        # bare None / Ellipsis / empty tuple
        for src, nd in ((one_d[5], 1), (self._d2, 2), (pil1, 1), (self._p2, 2)):
            self._obj(src, nd, [{'newaxis': True}], bare=True)
            self._obj(src, nd, [{'ellipsis': True}], bare=True)
            self._obj(src, nd, [{'s': [None, None, -1]}], bare=True)
            self._obj(src, nd, [])
        # A4: exhaustive short index tuples over a small alphabet
        alpha = [{'i': 0}, {'i': -1}, {'s': [None, None, -1]}, {'s': [1, None, None]},
                 {'ellipsis': True}, {'newaxis': True}, {'i': 5}]
        srcs = {1: [one_d[5], pil1], 2: [self._d2, self._p2], 3: [self._d3, self._p3]}
        for nd in (1, 2, 3):
            maxlen = nd + 1 if nd < 3 else nd     # longer tuples: see A5
            for src in srcs[nd]:
                for L in range(0, maxlen + 1):
                    for combo in _product(range(len(alpha)), L):
                        if L == maxlen and rng.random() < 0.8:
                            continue
                        self._obj(src, nd, [alpha[k] for k in combo])
        # A5: too many indices (run in subprocess workers; crashes recorded)
        for nd, src in ((1, one_d[5]), (2, self._d2), (3, self._d3), (1, pil1), (2, self._p2)):
            for count in sorted({nd + 1, nd + 2, 8, 9, 10, 16, 30, 64}):
                R = dict(risky=True)
                self._obj(src, nd, [{'s': [None, None, None]}] * count, **R)
                self._obj(src, nd, [{'i': 0}] * count, **R)
                self._obj(src, nd, [{'s': [None, None, None]}] * (count - 1) + [{'i': 0}], **R)
                self._obj(src, nd, [{'i': 0}] * (count - 1) + [{'s': [None, None, -1]}], **R)
                self._obj(src, nd, [{'ellipsis': True}] + [{'i': 0}] * count, **R)
                self._obj(src, nd, [{'ellipsis': True}] * count, **R)
        # A6: random multi-d tuples
        for k in range(1500):
            nd = rng.choice([2, 3, 4])
            src = self.P(rng, nd) if rng.random() < 0.25 else self.D(rng, nd)
            L = rng.randint(1, nd)
            items = []
            for _ in range(L):
                r = rng.random()
                if r < 0.3:
                    items.append({'i': rng.choice(IDX)})
                elif r < 0.95:
                    items.append({'s': [rng.choice([None] + AB), rng.choice([None] + AB),
                                        rng.choice([None, None] + STEPS)]})
                else:
                    items.append({'ellipsis': True})
            self._obj(src, nd, items)

    def _obj(self, recipe, ndim, items, bare=False, risky=False):
        case = {'path': 'object', 'index': items}
        if bare:
            case['bare'] = True
        task = {'op': 'obj_index', 'recipe': recipe, 'ndim': ndim, 'index': items, 'bare': bare}
        if risky:
            task['risky'] = True      # may crash the worker: recorded as {"crash": ...}
        self.add('slice', case, task)
        case['_recipe'] = recipe

    # --------------------------------------------------------- B: compiled
    def slice_compiled(self):
        rng = random.Random(202)
        funcs = self.spec['slice_funcs']
        one_d = {e: np_recipe([e], [1], 32, n=64) for e in range(6)}
        for f in funcs:
            pat, nd, decl = f['pattern'], f['ndim'], f['decl']
            if decl == 'strided' and nd == 1 and len(pat) == 1 and pat[0] in gen_pyx.SLICE_KINDS:
                # B1: exhaustive over extents 0..5
                for e in range(6):
                    for combo in _value_grid(pat[0]):
                        args, items = combo
                        self._comp(f, one_d[e], args, items)
                continue
            n = {1: 30, 2: 9, 3: 9, 4: 8}[nd]
            if decl != 'strided':
                n = {1: 20, 2: 5, 3: 6, 4: 5}[nd]
            for _ in range(n):
                if decl == 'strided':
                    src = self.D(rng, nd)
                elif rng.random() < 0.8:
                    src = self.P(rng, nd)
                else:
                    src = self.D(rng, nd)
                args, items = compiled_values(rng, pat)
                self._comp(f, src, args, items)

    def _comp(self, f, recipe, args, items):
        case = {'path': 'compiled', 'decl': f['decl_text'], 'index': items, 'func': f['name'],
                '_recipe': recipe}
        self.add('slice', case, {'op': 'call', 'recipe': recipe,
                                 'func': '%s.%s' % (f['module'], f['name']),
                                 'args': args, 'result': 'view'})

    # ---------------------------------------------------------- C: element
    def element(self):
        rng = random.Random(303)

        def pick(e):
            r = rng.random()
            if e > 0 and r < 0.55:
                return rng.randrange(e)
            if e > 0 and r < 0.75:
                return -rng.randint(1, e)
            return rng.choice([e, -e - 1, e + 1, 1000, -1000, 2 ** 40, -2 ** 40])

        for nd in (1, 2, 3, 4):
            for k in range(150):
                src = self.D(rng, nd)
                idx = [pick(e) for e in src['shape']]
                self._elem_c(nd, 'strided', src, idx)
            for k in range(100):
                src = self.P(rng, nd) if rng.random() < 0.7 else self.D(rng, nd)
                shape = self._shape_of(src)
                idx = [pick(e) for e in shape]
                self._elem_c(nd, 'generic', src, idx)
            for k in range(100):
                src = self.P(rng, nd) if rng.random() < 0.3 else self.D(rng, nd)
                shape = self._shape_of(src)
                idx = [pick(e) for e in shape]
                if rng.random() < 0.05:
                    idx[rng.randrange(nd)] = rng.choice([2 ** 63, -2 ** 63 - 1])
                items = [{'i': i} for i in idx]
                case = {'path': 'object', 'code': 'm[index]', 'index': items, '_recipe': src}
                self.add('element', case, {'op': 'obj_index', 'recipe': src, 'ndim': nd,
                                           'index': items, 'bare': False})

    def _elem_c(self, nd, decl, src, idx):
        fn = 'elem_%s%d' % ('s' if decl == 'strided' else 'g', nd)
        case = {'path': 'compiled', 'decl': gen_pyx.decl_text(decl, nd),
                'code': '&v[%s]' % ', '.join('i%d' % k for k in range(nd)),
                'index': [{'i': i} for i in idx], 'func': fn, '_recipe': src}
        self.add('element', case, {'op': 'call', 'recipe': src, 'func': 'golden_core.' + fn,
                                   'args': idx, 'result': 'addr'})

    def _shape_of(self, recipe):
        """Logical shape of a recipe (computed without building it)."""
        if recipe['t'] == 'np':
            return recipe['shape']
        shape = recipe['shape']
        if recipe.get('slice'):
            shape = [len(range(*slice(*s).indices(e))) for s, e in zip(recipe['slice'], shape)]
        return shape

    # -------------------------------------------------------- D: transpose
    def transpose(self):
        rng = random.Random(404)
        for nd in (1, 2, 3, 4):
            for k in range(25):
                # every 5th source is indirect: acquisition into double[:, ...] must fail
                src = self.P(rng, nd) if k % 5 == 4 else self.D(rng, nd)
                case = {'path': 'compiled', 'decl': gen_pyx.decl_text('strided', nd),
                        'code': 'v.T', 'func': 'T_s%d' % nd, 'args': {}, '_recipe': src}
                self.add('transpose', case, {'op': 'call', 'recipe': src,
                                             'func': 'golden_core.T_s%d' % nd, 'args': [],
                                             'result': 'view'})
            for k in range(20):
                src = self.P(rng, nd) if k % 3 == 0 else self.D(rng, nd)
                case = {'path': 'object', 'code': 'm.T', '_recipe': src}
                self.add('transpose', case, {'op': 'obj_method', 'recipe': src, 'method': 'T'})
        for name, nd, code, _desc in self.spec['transpose_funcs']:
            params = gen_pyx.transpose_params(code)
            for k in range(8):
                src = self.D(rng, nd, nonempty=True)
                shape = src['shape']
                vals = {}
                for p in params:
                    if p in 'ij':
                        dim = 0 if (p == 'i' and not code.startswith('v[:')) else 1
                        vals[p] = rng.randrange(-shape[dim], shape[dim]) if k < 7 else shape[dim]
                    else:
                        vals[p] = rng.choice([None, 0, 1, -1, 2]) if p == 'a' else rng.choice([1, 2, -1, 5])
                        if vals[p] is None:
                            vals[p] = 0
                case = {'path': 'compiled', 'decl': gen_pyx.decl_text('strided', nd), 'code': code,
                        'func': name, 'args': vals, '_recipe': src}
                self.add('transpose', case, {'op': 'call', 'recipe': src,
                                             'func': 'golden_core.' + name,
                                             'args': [vals[p] for p in params], 'result': 'view'})

    # ----------------------------------------------------------- E: contig
    def contig_sources(self, rng, nd):
        out = []
        shapes = [rand_shape(rng, nd, 4 if nd < 4 else 3) for _ in range(6)] + [[1] * nd, [0] + [3] * (nd - 1),
                                                          [3] * (nd - 1) + [1], [2] * nd]
        for shape in shapes:
            c, acc = [], 1
            for e in reversed(shape):
                c.append(acc)
                acc *= max(e, 1)
            c = list(reversed(c))
            f, acc = [], 1
            for e in shape:
                f.append(acc)
                acc *= max(e, 1)
            variants = [c, f, [-s for s in c], [s * 2 for s in c], [0] * nd]
            # extent-1 axes with arbitrary strides: contiguous by Cython's rule?
            odd = [s if e != 1 else 7 for s, e in zip(c, shape)]
            variants.append(odd)
            oddf = [s if e != 1 else -5 for s, e in zip(f, shape)]
            variants.append(oddf)
            for est in variants:
                out.append(np_recipe(shape, est, fit_offset(rng, shape, est, N_DIRECT)))
            for est in (odd, oddf, [0] * nd, [s if e > 1 else -3 for s, e in zip(c, shape)]):
                out.append(tb_strided(shape, est))
        return out

    def contig(self):
        rng = random.Random(505)
        for nd in (1, 2, 3, 4):
            for src in self.contig_sources(rng, nd):
                self._contig_c(nd, 'strided', src)
            for k in range(20):
                src = self.P(rng, nd) if k % 2 else self.D(rng, nd)
                self._contig_c(nd, 'generic', src)
            pil_c = pil_recipe([2] * nd)
            self._contig_c(nd, 'generic', pil_c)
            for k in range(20):
                src = self.P(rng, nd) if k % 4 == 0 else self.D(rng, nd)
                self.add('contig', {'path': 'object', 'code': 'm.is_c_contig(), m.is_f_contig()',
                                    '_recipe': src},
                         {'op': 'obj_method', 'recipe': src, 'method': 'contig'})

    def _contig_c(self, nd, decl, src):
        fn = 'contig_%s%d' % ('s' if decl == 'strided' else 'g', nd)
        self.add('contig', {'path': 'compiled', 'decl': gen_pyx.decl_text(decl, nd),
                            'code': 'v.is_c_contig(), v.is_f_contig()', 'func': fn, '_recipe': src},
                 {'op': 'call', 'recipe': src, 'func': 'golden_core.' + fn, 'args': [],
                  'result': 'contig'})

    # --------------------------------------------------------- F: validate
    def validate_sources(self, nd):
        rng = random.Random(600 + nd)
        out = []

        def cstr(shape):
            st, acc = [], 1
            for e in reversed(shape):
                st.append(acc)
                acc *= max(e, 1)
            return list(reversed(st))

        def fstr(shape):
            st, acc = [], 1
            for e in shape:
                st.append(acc)
                acc *= max(e, 1)
            return st

        base_shapes = {1: [[5], [1], [0]], 2: [[3, 4], [1, 4], [3, 1], [0, 3], [1, 1]],
                       3: [[2, 3, 4], [2, 1, 3], [0, 2, 2], [1, 1, 1]]}[nd]
        for shape in base_shapes:
            for est in (cstr(shape), fstr(shape), [2 * s for s in cstr(shape)],
                        [-s for s in cstr(shape)]):
                out.append(np_recipe(shape, est, fit_offset(rng, shape, est, 64), n=64))
        sh = base_shapes[0]
        c = cstr(sh)
        out.append(np_recipe(sh, [0] * nd, 10, n=64))
        out.append(np_recipe(sh, c, 0, n=64, ro=True))
        out.append(np_recipe(sh, c, 0, n=64, dtype='f4'))
        out.append(np_recipe(sh, c, 0, n=64, dtype='i8'))
        # extent-1 axis with an odd stride
        if nd >= 2:
            sh1 = [1] + sh[1:]
            odd = [13] + cstr(sh1)[1:]
            out.append(np_recipe(sh1, odd, 0, n=64))
        # _testbuffer exporters
        n = 1
        for e in sh:
            n *= e
        out.append({'t': 'tb', 'shape': sh, 'nitems': n, 'flags': ['WRITABLE']})
        out.append({'t': 'tb', 'shape': sh, 'nitems': n, 'flags': []})          # read-only
        out.append({'t': 'tb', 'shape': sh, 'nitems': n, 'flags': ['FORTRAN', 'WRITABLE']})
        out.append(pil_recipe(sh))
        out.append(pil_recipe(sh, [[None, None, -1]] + [[None, None, None]] * (nd - 1)))
        out.append(pil_recipe([e + 1 for e in sh], [[1, None, 2]] * nd))
        if nd >= 2:
            out.append(pil_recipe([1] + sh[1:]))
        # exact strides via _testbuffer (strides in bytes, offset in bytes)
        est = [2 * s for s in fstr(sh)]
        span = sum((e - 1) * s for e, s in zip(sh, est)) + 1
        out.append({'t': 'tb', 'shape': sh, 'nitems': span, 'strides': [8 * s for s in est],
                    'offset': 0, 'flags': ['WRITABLE']})
        est = [-s for s in fstr(sh)]
        span = sum((e - 1) * -s for e, s in zip(sh, est)) + 1
        out.append({'t': 'tb', 'shape': sh, 'nitems': span, 'strides': [8 * s for s in est],
                    'offset': 8 * (span - 1), 'flags': ['WRITABLE']})
        # extent-1 / extent-0 axes with odd strides (checks skip them)
        for shape in base_shapes[1:]:
            out.append(tb_strided(shape, [7 if e <= 1 else s for s, e in zip(cstr(shape), shape)]))
            out.append(tb_strided(shape, [-5 if e <= 1 else s for s, e in zip(fstr(shape), shape)]))
        out.append(tb_strided(sh, [0] * nd))
        # Cython memoryview objects (from another module) as exporters
        inner = np_recipe(sh, c, 0, n=64)
        out.append({'t': 'cymv', 'of': inner, 'index': []})
        out.append({'t': 'cymv', 'of': inner,
                    'index': [{'s': [None, None, -1]}] + [{'s': [None, None, None]}] * (nd - 1)})
        out.append({'t': 'cymv', 'of': pil_recipe(sh), 'index': []})
        return out

    def validate(self):
        funcs = self.spec['validate_funcs']
        srcs = {nd: self.validate_sources(nd) for nd in (1, 2, 3)}
        for f in funcs:
            nd = f['ndim']
            lst = list(srcs[nd])
            other = 2 if nd != 2 else 1
            lst += srcs[other][:2]
            for src in lst:
                case = {'decl': f['decl'], 'ndim': nd, 'func': f['name'], '_recipe': src}
                self.add('validate', case, {'op': 'validate', 'recipe': src,
                                            'func': 'golden_validate.' + f['name'],
                                            'request': None})

    # ------------------------------------------------------------- G: copy
    def copy(self):
        rng = random.Random(707)
        for nd in (1, 2, 3, 4):
            for k in range(15):
                src = self.D(rng, nd)
                for fn, what in (('copy_s%d' % nd, 'copy'), ('copyf_s%d' % nd, 'copy_fortran')):
                    self.add('copy', {'path': 'compiled', 'op': what, 'code': 'v.%s()' % what,
                                      'decl': gen_pyx.decl_text('strided', nd), 'func': fn,
                                      '_recipe': src},
                             {'op': 'call', 'recipe': src, 'func': 'golden_core.' + fn,
                              'args': [], 'result': 'copy'})
            for k in range(6):
                src = self.P(rng, nd) if k % 2 == 0 else self.D(rng, nd)
                for what in ('copy', 'copy_fortran'):
                    self.add('copy', {'path': 'object', 'op': what, 'code': 'm.%s()' % what,
                                      '_recipe': src},
                             {'op': 'obj_method', 'recipe': src, 'method': what})
        # assignments dst[...] = src
        A = {name: (dd, sd) for name, dd, sd in self.spec['assign_funcs']}

        def nd_of(decl):
            return decl.count(':') if '::' not in decl else decl.count(',') + 1

        n = 48
        for name in sorted(A):
            dd, sd = A[name]
            dn, sn = nd_of(dd), nd_of(sd)
            for k in range(8):
                dshape = [rng.randint(1, 3) for _ in range(dn)]
                if sn <= dn:
                    sshape = dshape[dn - sn:]
                else:
                    sshape = [1] * (sn - dn) + dshape
                if k == 5:
                    sshape = [1 if rng.random() < 0.5 else e for e in sshape]   # broadcast extent-1
                if k == 6:
                    sshape = [e + 1 for e in sshape]                            # mismatch
                if k == 7 and sn > dn:
                    sshape = [2] + sshape[1:]                                   # leading extent 2
                shared = k in (3, 4, 7) and sn <= dn
                dst_est = [rng.choice([1, 2, -1, 3]) for _ in range(dn)]
                src_est = [rng.choice([1, 2, -1, -2]) for _ in range(sn)]
                dst = np_recipe(dshape, dst_est, fit_offset(rng, dshape, dst_est, n), n=n)
                if shared:
                    # src overlapping dst: same strides (k == 7: reversed), shifted a little
                    src_est = dst_est[dn - sn:] if k != 7 else [-x for x in dst_est[dn - sn:]]
                    soff = dst['off'] + rng.choice([0, 1, 2, -1])
                    lo = hi = 0
                    for e, st in zip(sshape, src_est):
                        lo += min(0, (e - 1) * st)
                        hi += max(0, (e - 1) * st)
                    soff = min(max(soff, -lo), n - 1 - hi)
                    src = np_recipe(sshape, src_est, soff, n=n)
                else:
                    src = np_recipe(sshape, src_est, fit_offset(rng, sshape, src_est, n), n=n)
                for path in (('compiled', 'object') if k < 2 or k == 6 else ('compiled',)):
                    case = {'path': path, 'op': 'assign', 'func': name if path == 'compiled' else None,
                            'decl': [dd, sd] if path == 'compiled' else None,
                            'code': 'dst[...] = src' if path == 'compiled' else 'm_dst[...] = m_src',
                            'shared_memory': shared, '_dst': dst, '_src': src}
                    self.add('copy', case, {'op': 'assign', 'path': path,
                                            'func': 'golden_core.' + name, 'dst': dst,
                                            'src': src, 'shared': shared})
        # object path: indirect source, broadcasting via object path
        for k in range(4):
            sh = [2, 3]
            dst = np_recipe(sh, [3, 1], 5, n=n)
            src = pil_recipe(sh, [[None, None, -1], [None, None, None]] if k % 2 else None)
            case = {'path': 'object', 'op': 'assign', 'func': None, 'decl': None,
                    'code': 'm_dst[...] = m_src',
                    'shared_memory': False, '_dst': dst, '_src': src}
            self.add('copy', case, {'op': 'assign', 'path': 'object', 'func': None,
                                    'dst': dst, 'src': src, 'shared': False})
        for k in range(4):
            dst = np_recipe([3, 4], [4, 1], 10, n=n)
            src = np_recipe([1, 4] if k % 2 else [4], [0, 1] if k % 2 else [-1], 30, n=n)
            case = {'path': 'object', 'op': 'assign', 'func': None, 'decl': None,
                    'code': 'm_dst[...] = m_src',
                    'shared_memory': False, '_dst': dst, '_src': src}
            self.add('copy', case, {'op': 'assign', 'path': 'object', 'func': None,
                                    'dst': dst, 'src': src, 'shared': False})

    def generate(self, compiled_slices=True):
        self._d2 = np_recipe([3, 4], [4, 1], 8, n=64)
        self._d3 = np_recipe([2, 3, 4], [12, 4, 1], 8, n=64)
        self._p2 = pil_recipe([3, 4])
        self._p3 = pil_recipe([2, 3, 2], [[None, None, -1], [None, None, None], [None, None, None]])
        self.slice_object()
        if compiled_slices:
            self.slice_compiled()
        self.element()
        self.transpose()
        self.contig()
        self.validate()
        self.copy()


def _product(rng_range, L):
    import itertools
    return itertools.product(rng_range, repeat=L)


def _value_grid(tok):
    """All (args, items) for a single-slice 1-d pattern over AB x AB x STEPS."""
    parts = tok.split(':') + [''] * 2
    present = [bool(p) for p in parts[:3]]
    grids = [AB if present[0] else [None], AB if present[1] else [None],
             STEPS if present[2] else [None]]
    out = []
    if tok == ':':
        return [([], [{'s': [None, None, None]}])]
    for a in grids[0]:
        for b in grids[1]:
            for c in grids[2]:
                args = [x for x, p in zip((a, b, c), present) if p]
                out.append((args, [{'s': [a, b, c]}]))
    return out


# ======================================================== validate C parsing
def parse_validate_specs(build):
    """Read axes_specs / c_or_f flag / buffer flags that the generated C passes
    to __Pyx_ValidateAndInit_memviewslice for each acq_* function."""
    with open(os.path.join(build, 'golden_validate.c')) as fh:
        c = fh.read()
    out = {}
    found = cspecs.all_function_specs(c, [f['name'] for f in gen_pyx.validate_funcs()])
    for f in gen_pyx.validate_funcs():
        r = found[f['name']]
        assert r['ndim'] == f['ndim']
        out[f['name']] = {'specs': r['specs'], 'c_or_f': r['c_or_f'], 'buf_flags': r['buf_flags'],
                          'converter': r['converter']}
    return out


# ======================================================================= main
def source_elements(rec):
    """Set of element offsets of a source record (pure arithmetic)."""
    ptr = {s: t for s, t in rec['pointers']}
    out = set()
    nd = rec['ndim']
    total = 1
    for e in rec['shape']:
        total *= e
    for flat in range(total):
        rem, idx = flat, []
        for e in reversed(rec['shape']):
            idx.append(rem % e)
            rem //= e
        idx.reverse()
        off = rec['data']
        for d in range(nd):
            off += idx[d] * rec['strides'][d]
            if rec['suboffsets'][d] >= 0:
                off = ptr[off] + rec['suboffsets'][d]
        out.add(off)
    return out


def canonical(o):
    return json.dumps(o, sort_keys=True, separators=(',', ':'))


def run_main(build, cython_version, out_path, compiled_slices=True, compile_only=False, sample=1):
    t0 = time.time()
    probe_proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), 'probe',
                                   '--build', build], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
    # the compiled modules must be exactly what gen_pyx.py generates in this interpreter
    for mod, text in (('golden_core', gen_pyx.core_pyx()),
                      ('live_slice_s', gen_pyx.slice_pyx('live_slice_s')),
                      ('live_slice_g', gen_pyx.slice_pyx('live_slice_g')),
                      ('golden_validate', gen_pyx.validate_pyx())):
        if compile_only or (not compiled_slices and mod.startswith('live_slice_')):
            continue
        with open(os.path.join(build, mod + '.pyx')) as fh:
            if fh.read() != text:
                raise SystemExit('%s/%s.pyx is not what gen_pyx.py generates: run ci/gen-golden '
                                 '(without --check) to regenerate the fixtures'
                                 % (build, mod))
    gen = Gen()
    gen.generate(compiled_slices)
    # ids in generation order, per category and path, before any subset is taken
    numbered = {}
    for cat, case, task in gen.tasks:
        po = 'o' if case.get('path') == 'object' else 'c'
        prefix = {'slice': 'slice-' + po, 'element': 'elem-' + po, 'transpose': 'T-' + po,
                  'contig': 'contig-' + po, 'validate': 'validate', 'copy': 'copy-' + po}[cat]
        numbered[prefix] = numbered.get(prefix, 0) + 1
        case['_id'] = '%s-%05d' % (prefix, numbered[prefix])
    if compile_only:
        gen.tasks = []
    elif sample > 1:
        # every sample-th case of each id series, and every risky one (too many indices)
        gen.tasks = [t for t in gen.tasks
                     if t[2].get('risky') or int(t[1]['_id'].rsplit('-', 1)[1]) % sample == 1]
    vspecs = parse_validate_specs(build) if gen.tasks else {}
    for cat, case, task in gen.tasks:
        if task['op'] == 'validate':
            vs = vspecs[case['func']]
            task['request'] = vs['buf_flags']
            case.update(specs=vs['specs'], c_or_f=vs['c_or_f'], buf_flags=vs['buf_flags'])

    pool = WorkerPool(build)
    # 1. sources
    recipes = {}
    for cat, case, task in gen.tasks:
        for key in ('_recipe', '_dst', '_src'):
            if key in case:
                recipes.setdefault(canonical(case[key]), case[key])
    rkeys = sorted(recipes)
    src_results = pool.run([{'op': 'source', 'recipe': recipes[k]} for k in rkeys])
    sources, src_index, recipe_to_src = [], {}, {}
    for k, res in zip(rkeys, src_results):
        if 'source' not in res:
            raise SystemExit('cannot describe source %s: %r' % (k, res))
        rec = res['source']
        ck = canonical(rec)
        if ck not in src_index:
            src_index[ck] = None
        recipe_to_src[k] = ck
    # number sources in order of first use (deterministic)
    order = []
    seen = set()
    for cat, case, task in gen.tasks:
        for key in ('_recipe', '_dst', '_src'):
            if key in case:
                ck = recipe_to_src[canonical(case[key])]
                if ck not in seen:
                    seen.add(ck)
                    order.append(ck)
    for i, ck in enumerate(order):
        src_index[ck] = i
        sources.append(json.loads(ck))
    t_src = time.time()

    # 2. cases
    results = pool.run([task for _cat, _case, task in gen.tasks])
    t_cases = time.time()
    probe_out, probe_err = probe_proc.communicate()
    if probe_proc.returncode != 0:
        raise SystemExit('probe runner failed:\n' + probe_err)
    probes = json.loads(probe_out)

    out = {k: [] for k in ('slice', 'element', 'transpose', 'contig', 'validate', 'copy')}
    counters = {}
    crash_cases, ub_cases, oob_cases, outside_cases = [], [], [], []
    functions = {}
    exports = {}
    slice_specs = {f['name']: f for f in gen.spec['slice_funcs']}
    src_elements = {}
    for (cat, case, task), res in zip(gen.tasks, results):
        c = {k: v for k, v in case.items() if not k.startswith('_') and v is not None}
        for key, dest in (('_recipe', 'source'), ('_dst', 'dst'), ('_src', 'src')):
            if key in case:
                c[dest] = src_index[recipe_to_src[canonical(case[key])]]
        c['id'] = case['_id']
        prefix = c['id'].rsplit('-', 1)[0]
        counters[prefix] = counters.get(prefix, 0) + 1
        if 'func' in c:
            info = functions.setdefault(c['func'], {'name': c['func']})
            for key in ('decl', 'code', 'ndim', 'specs', 'c_or_f', 'buf_flags'):
                if key in c:
                    assert info.setdefault(key, c[key]) == c[key], (c['func'], key)
                    del c[key]
            if c['func'] in slice_specs:
                sf = slice_specs[c['func']]
                info.update(code=sf['expr'], pattern=sf['pattern'], params=sf['params'],
                            ndim=sf['ndim'], decl=sf['decl_text'])
        if cat == 'validate':
            ek = (c['source'], functions[c['func']]['buf_flags'])
            exp_rec = exports.setdefault(ek, res.get('exported'))
            assert exp_rec == res.get('exported'), (ek, exp_rec, res.get('exported'), case['_recipe'])
            res = res.get('expect', res)
        if cat == 'copy' and case.get('op') == 'assign':
            if 'err' in res and 'memory' in res:
                res = {'err': res['err'], 'memory_after': res['memory']}
        c['expect'] = res
        if 'crash' in res:
            crash_cases.append(c['id'])
        if 'ub' in res:
            ub_cases.append(c['id'])
        if 'source' in c and cat in ('slice', 'element', 'transpose'):
            got = []
            if 'ok' in res and isinstance(res['ok'], dict) and res['ok'].get('elements'):
                got = res['ok']['elements']
            elif 'element' in res:
                got = [res['element']]
            if got:
                srec = sources[c['source']]
                allowed = src_elements.setdefault(c['source'], source_elements(srec))
                if any(e is None or e not in allowed for e in got):
                    c['outside_source'] = True
                    outside_cases.append(c['id'])
                    if any(e is None or e < 0 or e + srec['itemsize'] > srec['memory_len'] for e in got):
                        oob_cases.append(c['id'])
        out[cat].append(c)

    compile_cases = []
    for k, p in enumerate(gen.spec['probes']):
        c = {'id': 'compile-%05d' % (k + 1), 'category': p['category'], 'code': p['code'],
             'expect': probes[p['name']], 'probe': p['name']}
        for key in ('decl', 'pattern', 'ndim', 'reason', 'expect_ok'):
            if key in p:
                c[key] = p[key]
        compile_cases.append(c)

    notes = [
        'Generated by cython_fixtures/golden/golden_run.py from modules compiled with Cython %s '
        '(boundscheck=True, wraparound=True, language_level=3, CFLAGS=-O1).' % cython_version,
        'Offsets are bytes relative to the memory block of the case\'s source; memory fill rule: '
        'every non-pointer slot at byte offset o holds o/itemsize (float64 for fill "f8").',
        'Index items: {"i": n} | {"s": [start, stop, step]} | {"newaxis": true} | {"ellipsis": true} | '
        '{"other": python-expression} (bad index types, object path only). "bare": true = index '
        'passed as the single item, not as a tuple.',
        'Python-level results were read with PyObject_GetBuffer(PyBUF_FULL_RO); "slice_suboffsets" '
        '(only when different) are the raw __Pyx_memviewslice.suboffsets behind the _memoryviewslice.',
    ]
    if sample > 1 and not compile_only:
        notes.append('Subset: every %dth case of each id series (ids as in the full set) and every '
                     'case with too many indices (--sample %d).' % (sample, sample))
    if compile_only:
        notes.append('Subset: only the compile probes (--compile-only: no C module is needed).')
    elif not compiled_slices:
        notes.append('Subset: the compiled slicing cases (live_slice_s, live_slice_g) are left '
                     'out (--no-compiled-slices).')
    if crash_cases:
        notes.append('CRASH: %d object-path cases killed the worker process (recorded as '
                     '{"crash": ...}): %s' % (len(crash_cases), ', '.join(crash_cases)))
    if ub_cases:
        notes.append('UB: %d cases produced a result with ndim > 8 (Cython read and wrote past '
                     'the 8-entry arrays of __Pyx_memviewslice; recorded as {"ub": ...}): %s'
                     % (len(ub_cases), ', '.join(ub_cases)))
    if outside_cases:
        notes.append('OUTSIDE SOURCE: %d cases ("outside_source": true) have a result element that '
                     'is not an element of the source view (null = indirection through a slot that '
                     'is not one of the source\'s pointers).' % len(outside_cases))
    if oob_cases:
        notes.append('OUT OF MEMORY: %d of them reach outside the memory block itself: %s'
                     % (len(oob_cases), ', '.join(oob_cases)))
    unexpected = [c['probe'] for c in compile_cases
                  if ('compiled' in c['expect']) != bool(c.get('expect_ok'))]
    if unexpected:
        notes.append('compile probes whose outcome differs from the expectation in gen_pyx.py: %s'
                     % ', '.join(unexpected))

    doc = {'cython': cython_version, 'python': '%d.%d.%d' % sys.version_info[:3],
           'notes': notes, 'sources': sources, 'compile': compile_cases,
           'functions': [functions[k] for k in sorted(functions)],
           'exports': [{'source': k[0], 'flags': k[1], 'result': exports[k]} for k in sorted(exports)]}
    doc.update(out)
    write_json(doc, out_path)
    t_end = time.time()
    counts = {k: len(v) for k, v in out.items()}
    counts['compile'] = len(compile_cases)
    counts['sources'] = len(sources)
    sys.stderr.write('cython %s: %s\n' % (cython_version, ' '.join(
        '%s=%d' % kv for kv in sorted(counts.items()))))
    sys.stderr.write('  by path: %s\n' % ' '.join('%s=%d' % kv for kv in sorted(counters.items())))
    sys.stderr.write('  crashes=%d ub=%d outside_source=%d out_of_memory=%d (worker counts: '
                     'oob element checks=%d, unresolved indirections=%d)\n' % (
                         len(crash_cases), len(ub_cases), len(outside_cases), len(oob_cases),
                         pool.oob_elements, pool.unresolved))
    sys.stderr.write('  time: sources %.1fs, cases %.1fs, total %.1fs; %s: %d bytes\n' % (
        t_src - t0, t_cases - t_src, t_end - t0, out_path, os.path.getsize(out_path)))


def write_json(doc, path):
    """Sorted keys; one case / source per line (diff-friendly, deterministic)."""
    lines = ['{']
    keys = sorted(doc)
    for n, k in enumerate(keys):
        v = doc[k]
        tail = ',' if n + 1 < len(keys) else ''
        if isinstance(v, list) and v and isinstance(v[0], dict):
            lines.append('%s: [' % json.dumps(k))
            for j, item in enumerate(v):
                lines.append(canonical(item) + (',' if j + 1 < len(v) else ''))
            lines.append(']' + tail)
        else:
            lines.append('%s: %s%s' % (json.dumps(k), json.dumps(v, sort_keys=True), tail))
    lines.append('}')
    tmp = path + '.tmp'
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(tmp, 'w') as fh:
        fh.write('\n'.join(lines) + '\n')
    json.load(open(tmp))   # validity check
    os.replace(tmp, path)


def main(argv):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument('mode', choices=['run', 'worker', 'probe'])
    ap.add_argument('--build', required=True)
    ap.add_argument('--cython')
    ap.add_argument('--out')
    ap.add_argument('--no-compiled-slices', action='store_true',
                    help='leave out the compiled slicing cases (live_slice_s/g not needed)')
    ap.add_argument('--sample', type=int, default=1, metavar='K',
                    help='every K-th case of each id series (and every risky one)')
    ap.add_argument('--compile-only', action='store_true',
                    help='only the compile probes (Cython alone, no compiled module needed)')
    a = ap.parse_args(argv)
    build = os.path.abspath(a.build)
    if a.mode == 'worker':
        worker_main(build)
    elif a.mode == 'probe':
        probe_main(build)
    else:
        import Cython
        if a.cython and Cython.__version__ != a.cython:
            raise SystemExit('venv has Cython %s, expected %s' % (Cython.__version__, a.cython))
        run_main(build, Cython.__version__, a.out, not a.no_compiled_slices, a.compile_only,
                 a.sample)


if __name__ == '__main__':
    main(sys.argv[1:])
