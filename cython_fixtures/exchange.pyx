# cython: language_level=3
"""Exchange fixture: typed memoryviews passed by value between Rust and Cython.

tests/exchange.rs takes these ``cdef api`` functions from ``__pyx_capi__`` (checked by their
C signatures) and calls them with slices Rust holds (``cyview_py::CythonSlice``), compares what
Cython computes with what Rust computes, and counts acquisitions.

Every view is declared ``double[::view.generic, ::view.generic]`` (direct or indirect on both
axes), so NumPy arrays, ``_testbuffer`` PIL-style arrays and ``RustBuffer``s all qualify.
"""
from cython cimport view

cdef api double[::view.generic, ::view.generic] exch_from_object(object obj):
    """``cdef double[::view.generic, ::view.generic] v = obj`` returned to the caller (who owns its acquisition); on a
    refused object, an error return (memview NULL) with the exception set."""
    cdef double[::view.generic, ::view.generic] v = obj
    return v


cdef api Py_ssize_t exch_addresses(double[::view.generic, ::view.generic] v, Py_ssize_t *out) noexcept:
    """Writes the address of every element of ``v`` in C order into ``out``."""
    cdef Py_ssize_t i, j, k = 0
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            out[k] = <Py_ssize_t> &v[i, j]
            k += 1
    return k


cdef api double exch_sum(double[::view.generic, ::view.generic] v) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef double total = 0
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            total += v[i, j]
    return total


cdef api double[::view.generic, ::view.generic] exch_slice(double[::view.generic, ::view.generic] v, Py_ssize_t a, Py_ssize_t b, Py_ssize_t c,
                          Py_ssize_t d, Py_ssize_t e, Py_ssize_t f) except *:
    """Cython's own ``v[a:b:c, d:e:f]``."""
    return v[a:b:c, d:e:f]


cdef double[::view.generic, ::view.generic] kept


cdef api int exch_keep(double[::view.generic, ::view.generic] v) except -1:
    """Cython keeps ``v`` in a module global (one acquisition) until ``exch_forget``."""
    global kept
    kept = v
    return 0


cdef api int exch_forget() except -1:
    global kept
    kept = None
    return 0


def memview_refcount_probe(obj):
    """A Python-level memoryview object of ``obj`` (for refcount checks)."""
    cdef double[::view.generic, ::view.generic] v = obj
    return v
