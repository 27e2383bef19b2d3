"""Python side of the live conformance tests: build buffer exporters and ask NumPy and
CPython what Python semantics give. Imported by the Rust tests through the embedded
interpreter (pure Python; no compiled code)."""
import numpy as np
import _testbuffer


def direct(nbytes, offset, shape, strides):
    """A float64 NumPy view of a fresh writable block of `nbytes`, starting `offset` bytes
    in, with byte `strides` (any sign, not necessarily multiples of 8). The caller checks
    that every element lies inside the block. Element bytes hold float64(k) at byte 8k of
    the block where aligned."""
    words = (nbytes + 7) // 8
    mem = bytearray(np.arange(words, dtype='<f8').tobytes())
    count = (len(mem) - offset) // 8
    base = np.frombuffer(mem, dtype='<f8', count=max(count, 0), offset=offset)
    return np.lib.stride_tricks.as_strided(base, shape=tuple(shape), strides=tuple(strides))


def pil(shape, keys):
    """A writable PIL-style `_testbuffer.ndarray` (dimension 0 holds pointers), optionally
    sliced by `keys` (a list of (start, stop, step) per dimension) with the ndarray's own
    slicing, which keeps the suboffsets."""
    n = 1
    for e in shape:
        n *= e
    nd = _testbuffer.ndarray([float(k) for k in range(n)], shape=list(shape), format='d',
                             flags=_testbuffer.ND_PIL | _testbuffer.ND_WRITABLE)
    if keys:
        nd = nd[tuple(slice(a, b, c) for a, b, c in keys)]
    return nd


def numpy_items(items):
    """Rust's item list (tuples) as a NumPy index tuple."""
    out = []
    for it in items:
        kind = it[0]
        if kind == 'i':
            out.append(it[1])
        elif kind == 's':
            out.append(slice(it[1], it[2], it[3]))
        elif kind == 'N':
            out.append(None)
        else:
            out.append(Ellipsis)
    return tuple(out)


def numpy_slice(arr, items):
    """NumPy's `arr[items]` as ('ok', data address, shape, strides), or an exception's
    ('err', type name, message, None)."""
    try:
        r = arr[numpy_items(items)]
    except Exception as e:  # noqa: BLE001 - any refusal is a result here
        return ('err', type(e).__name__, str(e), None)
    if not isinstance(r, np.ndarray):
        r = np.asarray(arr).__getitem__(numpy_items(items))
        r = np.asarray(r)
    return ('ok', r.__array_interface__['data'][0], list(r.shape), list(r.strides))


def np_view(dtype, nbytes, offset, shape, strides, readonly):
    """A NumPy view of a fresh block with any dtype (e.g. '<f8', '>f8', '<f4', '<i8'),
    byte strides and offset; read-only when asked."""
    mem = bytearray(bytes(range(256)) * (nbytes // 256 + 1))[:max(nbytes, 1)]
    itemsize = np.dtype(dtype).itemsize
    count = max((len(mem) - offset) // itemsize, 0)
    base = np.frombuffer(mem, dtype=dtype, count=count, offset=offset)
    a = np.lib.stride_tricks.as_strided(base, shape=tuple(shape), strides=tuple(strides))
    if readonly:
        a.setflags(write=False)
    return a


def structured(n, aligned):
    """A NumPy structured array (a struct format string)."""
    dt = np.dtype([('x', '<i4'), ('y', '<f8')], align=aligned)
    return np.zeros(n, dtype=dt)


def array_array(typecode, n):
    import array
    return array.array(typecode, range(n))


def raw_bytes(kind, n):
    data = bytes(range(n % 256)) * (n // 256 + 1)
    data = data[:n]
    if kind == 'bytes':
        return data
    if kind == 'bytearray':
        return bytearray(data)
    return memoryview(bytearray(data))


def testbuffer(shape, fmt, flags):
    """`_testbuffer.ndarray` with `flags` named as in _testbuffer (ND_FORTRAN, ND_PIL,
    ND_WRITABLE, ND_GETBUF_FAIL)."""
    n = 1
    for e in shape:
        n *= e
    f = 0
    for name in flags:
        f |= getattr(_testbuffer, name)
    items = [float(k) for k in range(n)] if fmt in ('d', 'f') else [k % 100 for k in range(n)]
    return _testbuffer.ndarray(items, shape=list(shape), format=fmt, flags=f)


def acquire_specs(c_path, names):
    """Per acquisition function of the generated C at `c_path`: (specs, buffer flags,
    ndim), as Cython's C passes them to __Pyx_ValidateAndInit_memviewslice."""
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'golden'))
    import cspecs
    with open(c_path) as fh:
        c = fh.read()
    found = cspecs.all_function_specs(c, names)
    return [(found[n]['specs'], found[n]['buf_flags'], found[n]['ndim']) for n in names]


def np_any(dtype, nbytes, offset, shape, strides, readonly):
    """`np_view` for any NumPy dtype string, including structured ones given as a list of
    (name, format) pairs with an `align` flag: ('struct', fields, align)."""
    if isinstance(dtype, tuple):
        dtype = np.dtype(list(dtype[1]), align=dtype[2])
    return np_view(dtype, nbytes, offset, shape, strides, readonly)


def element_values(mv, ndim):
    """Every element of `mv` (a Cython memoryview object) read with Python-level indexing,
    in C order, each as a list of floats: a number [v], a complex [re, im], a struct (dict)
    its fields' values in order."""
    import itertools
    shape = mv.shape[:ndim]
    out = []
    for idx in itertools.product(*[range(n) for n in shape]):
        v = mv[idx] if ndim else mv[()]
        if isinstance(v, dict):
            out.append([float(x) for x in v.values()])
        elif isinstance(v, complex):
            out.append([v.real, v.imag])
        else:
            out.append([float(v)])
    return out
