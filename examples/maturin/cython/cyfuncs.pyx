# cython: language_level=3, boundscheck=False, wraparound=False
"""The Cython side of the maturin example.

* `total`: a `cdef api` function, which the Rust extension (`cyview_example.cython_total`)
  calls through its C pointer with a view of a NumPy array;
* `def` functions doing what each Rust function does, with the same argument declarations:
  the tests give both the same arguments and expect the same results and exceptions.
"""
from libc.math cimport isfinite

import numpy as np


cdef api double total(const double[:, :] v) except? -1:
    """The sum of the elements of `v`, row by row; ValueError when it is not finite."""
    cdef double s = 0
    cdef Py_ssize_t i, j
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            s += v[i, j]
    if not isfinite(s):
        raise ValueError(f"total: the sum is not finite ({s})")
    return s


def total_py(const double[:, :] v not None):
    """`total` called from Cython: the twin of `cyview_example.cython_total`."""
    return total(v)


def row_sums(const double[:, ::1] a not None):
    """The twin of `cyview_example.row_sums`: the sum of each row, as a new array."""
    out = np.empty(a.shape[0])
    cdef double[::1] o = out
    cdef double s
    cdef Py_ssize_t i, j
    for i in range(a.shape[0]):
        s = 0
        for j in range(a.shape[1]):
            s += a[i, j]
        o[i] = s
    return out


def scale_inplace(double[:, :] a not None, double k):
    """The twin of `cyview_example.scale_inplace`: `a *= k` in place."""
    cdef Py_ssize_t i, j
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            a[i, j] = a[i, j] * k
