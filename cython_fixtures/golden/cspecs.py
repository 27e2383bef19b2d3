"""Read what Cython's generated C passes to `__Pyx_ValidateAndInit_memviewslice`.

For every Python-level `def` of a module whose body converts an object to a typed
memoryview (`cdef <decl> v = obj`), the per-axis specs (`axes_specs[]`), the C/Fortran
contiguity flag, the buffer request flags (including the writable flag the caller adds)
and the number of dimensions, as the C compiler would evaluate them. Used by the golden
generator and by the live acquisition tests, so both take the specs from Cython itself.
"""
import re

PyBUF_WRITABLE = 0x0001
PyBUF_FORMAT = 0x0004
PyBUF_ND = 0x0008
PyBUF_STRIDES = 0x0010 | PyBUF_ND
PyBUF_C_CONTIGUOUS = 0x0020 | PyBUF_STRIDES
PyBUF_F_CONTIGUOUS = 0x0040 | PyBUF_STRIDES
PyBUF_ANY_CONTIGUOUS = 0x0080 | PyBUF_STRIDES
PyBUF_INDIRECT = 0x0100 | PyBUF_STRIDES
C_CONSTANTS = {
    'PyBUF_SIMPLE': 0, 'PyBUF_WRITABLE': PyBUF_WRITABLE, 'PyBUF_FORMAT': PyBUF_FORMAT,
    'PyBUF_ND': PyBUF_ND, 'PyBUF_STRIDES': PyBUF_STRIDES,
    'PyBUF_C_CONTIGUOUS': PyBUF_C_CONTIGUOUS, 'PyBUF_F_CONTIGUOUS': PyBUF_F_CONTIGUOUS,
    'PyBUF_ANY_CONTIGUOUS': PyBUF_ANY_CONTIGUOUS, 'PyBUF_INDIRECT': PyBUF_INDIRECT,
    'PyBUF_CONTIG': PyBUF_ND | PyBUF_WRITABLE, 'PyBUF_CONTIG_RO': PyBUF_ND,
    'PyBUF_STRIDED': PyBUF_STRIDES | PyBUF_WRITABLE, 'PyBUF_STRIDED_RO': PyBUF_STRIDES,
    'PyBUF_RECORDS': PyBUF_STRIDES | PyBUF_WRITABLE | PyBUF_FORMAT,
    'PyBUF_RECORDS_RO': PyBUF_STRIDES | PyBUF_FORMAT,
    'PyBUF_FULL': PyBUF_INDIRECT | PyBUF_WRITABLE | PyBUF_FORMAT,
    'PyBUF_FULL_RO': PyBUF_INDIRECT | PyBUF_FORMAT,
    '__Pyx_MEMVIEW_DIRECT': 1, '__Pyx_MEMVIEW_PTR': 2, '__Pyx_MEMVIEW_FULL': 4,
    '__Pyx_MEMVIEW_CONTIG': 8, '__Pyx_MEMVIEW_STRIDED': 16, '__Pyx_MEMVIEW_FOLLOW': 32,
    '__Pyx_IS_C_CONTIG': 1, '__Pyx_IS_F_CONTIG': 2,
}


def split_top(s):
    """Split a C initialiser list at its top-level commas."""
    parts, depth, cur = [], 0, ''
    for ch in s:
        if ch == '(':
            depth += 1
        elif ch == ')':
            depth -= 1
        if ch == ',' and depth == 0:
            parts.append(cur.strip())
            cur = ''
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def eval_c(expr):
    """Evaluate a C constant expression made of the names above, `|` and integers."""
    return int(eval(expr, {'__builtins__': {}}, dict(C_CONSTANTS)))


def converters(c):
    """{converter name: (specs, c_or_f, buf_flags without the writable flag, ndim)}."""
    conv = {}
    # The definition is indented; its closing brace is at column 0 (0.29-3.1) or at the
    # definition's own indentation (3.2+).
    for m in re.finditer(r'^([ \t]*)static CYTHON_INLINE __Pyx_memviewslice (__Pyx_PyObject_to_MemoryviewSlice_\w+)'
                         r'\(PyObject \*obj, int writable_flag\) \{(.*?)\n(?:\1)?\}', c, re.S | re.M):
        body = m.group(3)
        specs = re.search(r'int axes_specs\[\] = \{ (.*?) \};', body).group(1)
        call = re.search(r'__Pyx_ValidateAndInit_memviewslice\(axes_specs, (.*?),\s*(.*?) \| writable_flag, (\d+),',
                         body, re.S)
        spec_list = [eval_c(s) for s in split_top(specs)]
        conv[m.group(2)] = (spec_list, eval_c(call.group(1)), eval_c(call.group(2)), int(call.group(3)))
    return conv


def function_specs(c, name, conv=None):
    """The acquisition of the `def name(obj)` of the generated C text `c`."""
    conv = converters(c) if conv is None else conv
    m = re.search(r'static PyObject \*__pyx_pf_\w*?_\d*%s\([^)]*\) \{(.*?)\n\}' % name, c, re.S)
    body = m.group(0)
    call = re.search(r'(__Pyx_PyObject_to_MemoryviewSlice_\w+)\(__pyx_v_obj, (\w+)\)', body)
    specs, cf, bf, nd = conv[call.group(1)]
    wf = eval_c(call.group(2))
    return {'specs': specs, 'c_or_f': cf, 'buf_flags': bf | wf, 'ndim': nd,
            'converter': call.group(1)}


def all_function_specs(c, names):
    """`function_specs` for each of `names`."""
    conv = converters(c)
    return {n: function_specs(c, n, conv) for n in names}
