# cython: language_level=3
"""Call-cost fixture for benches/exchange.rs: the same trivial function taking a typed
memoryview by value or a plain pointer, called from Rust (``cdef api``), and loops that
call a Rust function through a pointer with either argument (Cython calling Rust)."""

cimport cython

ctypedef double (*view_fn)(double[:, ::1] v) noexcept nogil
ctypedef double (*ptr_fn)(double *p) noexcept nogil


cdef api double cb_first_view(double[:, ::1] v) noexcept nogil:
    """``v[0, 0]`` with Cython's default checks (initialised view, bounds)."""
    return v[0, 0]


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.initializedcheck(False)
cdef api double cb_first_view_unchecked(double[:, ::1] v) noexcept nogil:
    """``v[0, 0]`` without the checks: the call itself, as with the pointer."""
    return v[0, 0]


cdef api double cb_first_ptr(double *p) noexcept nogil:
    return p[0]


@cython.boundscheck(False)
@cython.wraparound(False)
@cython.initializedcheck(False)
cdef api double cb_sum_view(double[:, ::1] v) noexcept nogil:
    """The sum of all elements of a C-contiguous view (shape from the slice)."""
    cdef double total = 0
    cdef Py_ssize_t i, j
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            total += v[i, j]
    return total


cdef api double cb_sum_ptr(double *p, Py_ssize_t n, Py_ssize_t m) noexcept nogil:
    """The same with the pointer and the shape as separate arguments."""
    cdef double total = 0
    cdef Py_ssize_t i, j
    for i in range(n):
        for j in range(m):
            total += p[i * m + j]
    return total


cdef api double cb_call_view(void *fp, double[:, ::1] v, Py_ssize_t n) noexcept nogil:
    """Calls the Rust function at ``fp`` (a ``view_fn``) with the view ``n`` times; the sum
    of its results."""
    cdef view_fn f = <view_fn> fp
    cdef double total = 0
    cdef Py_ssize_t i
    for i in range(n):
        total += f(v)
    return total


cdef api double cb_call_ptr(void *fp, double *p, Py_ssize_t n) noexcept nogil:
    cdef ptr_fn f = <ptr_fn> fp
    cdef double total = 0
    cdef Py_ssize_t i
    for i in range(n):
        total += f(p)
    return total
