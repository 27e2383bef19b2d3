# cython: language_level=3
"""capi fixture: ``cdef api`` functions of many signatures for tests/capi.rs.

tests/capi.rs calls them through ``cyview_py::CythonFunction`` (signatures derived from Rust
types) and compares results and exceptions with those of their ``def`` twins (same name
without ``capi_``), which call the same C function from Python. Every function states its
exception clause, so that 0.29 and 3.x behave alike.
"""
from libc.stdint cimport (int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t,
                          uint64_t, intptr_t, uintptr_t)
from libc.string cimport strlen
import numpy as np


cdef api double capi_total(const double[:, :] v) except? -1:
    """The sum of the elements; ValueError for an empty view."""
    if v.shape[0] == 0 or v.shape[1] == 0:
        raise ValueError("empty view (%d x %d)" % (v.shape[0], v.shape[1]))
    cdef double t = 0
    cdef Py_ssize_t i, j
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            t += v[i, j]
    return t

def total(v):
    return capi_total(v)


cdef api double capi_row_sum(const double[:, :] v, Py_ssize_t i) except? -1:
    """The sum of row ``i``; IndexError outside the rows."""
    if not 0 <= i < v.shape[0]:
        raise IndexError("row %d out of range for %d rows" % (i, v.shape[0]))
    cdef double t = 0
    cdef Py_ssize_t j
    for j in range(v.shape[1]):
        t += v[i, j]
    return t

def row_sum(v, i):
    return capi_row_sum(v, i)


cdef api double[:, ::1] capi_scaled(const double[:, :] v, double k):
    """A new C-contiguous ``k * v``; ValueError for ``k == 0`` (an error return: memview NULL)."""
    if k == 0:
        raise ValueError("scale by zero")
    cdef double[:, ::1] w = np.empty((v.shape[0], v.shape[1]))
    cdef Py_ssize_t i, j
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            w[i, j] = k * v[i, j]
    return w

def scaled(v, k):
    return capi_scaled(v, k)


cdef api const double[:, :] capi_view_of(object obj):
    """``cdef const double[:, :] v = obj``, owned by the caller."""
    cdef const double[:, :] v = obj
    return v

def view_of(obj):
    return capi_view_of(obj)


cdef api const double[:] capi_view_of_1d(object obj):
    cdef const double[:] v = obj
    return v

def view_of_1d(obj):
    return capi_view_of_1d(obj)


cdef api double capi_first(const double[::1] v) except? -1:
    """``v[0]`` of a C-contiguous view; IndexError when empty."""
    if v.shape[0] == 0:
        raise IndexError("empty view")
    return v[0]

def first(v):
    return capi_first(v)


cdef api int capi_fill(double[:, ::1] v, double x) except -1:
    """Writes ``x`` into every element."""
    cdef Py_ssize_t i, j
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            v[i, j] = x
    return 0

def fill(v, x):
    return capi_fill(v, x)


cdef api object capi_as_array(const double[:, :] v):
    """``np.asarray(v)``: the view as a Python object (a memoryview of the argument's)."""
    return np.asarray(v)

def as_array(v):
    return capi_as_array(v)


cdef api object capi_as_object(const double[:, :] v):
    """``v`` itself as a Python object."""
    return v

def as_object(v):
    return capi_as_object(v)


cdef api double[:] capi_maybe(double[:] v, int give):
    """``v``, or ``None``."""
    if give:
        return v
    return None


cdef double[:] kept


cdef api int capi_keep(double[:] v) except -1:
    """Keeps ``v`` in a module global (one acquisition) until ``capi_forget``."""
    global kept
    kept = v
    return 0


cdef api int capi_forget() except -1:
    global kept
    kept = None
    return 0


cdef api long long capi_ints(signed char a, unsigned char b, short c, unsigned short d, int e,
                             unsigned int f, long g, unsigned long h, long long i,
                             unsigned long long j) except? -1:
    """A weighted sum (each weight a power of 10) of ten integer types."""
    return (a + 10 * <long long> b + 100 * <long long> c + 1000 * <long long> d
            + 10000 * <long long> e + 100000 * <long long> f + 1000000 * <long long> g
            + 10000000 * <long long> h + 100000000 * i + 1000000000 * <long long> j)

def ints(a, b, c, d, e, f, g, h, i, j):
    return capi_ints(a, b, c, d, e, f, g, h, i, j)


cdef api int64_t capi_stdint(int8_t a, int16_t b, int32_t c, int64_t d, uint8_t e, uint16_t f,
                             uint32_t g, uint64_t h) except? -1:
    return a - b + c - d + e - f + g - <int64_t> h

def stdint(a, b, c, d, e, f, g, h):
    return capi_stdint(a, b, c, d, e, f, g, h)


cdef api Py_ssize_t capi_sizes(Py_ssize_t a, size_t b, intptr_t c, uintptr_t d, const int e,
                               const double f) except? -1:
    return a * 3 + <Py_ssize_t> b * 5 + c * 7 + <Py_ssize_t> d * 11 + e * 13 + <Py_ssize_t> f

def sizes(a, b, c, d, e, f):
    return capi_sizes(a, b, c, d, e, f)


cdef api float capi_product(float x, float y) noexcept nogil:
    return x * y

def product(x, y):
    return capi_product(x, y)


cdef api double complex capi_complex(double complex a, float complex b) noexcept:
    return a * b + 1j

def complex_(a, b):
    return capi_complex(a, b)


cdef api Py_ssize_t capi_strlen(const char *s) except -1:
    """The length of ``s``; ValueError when empty."""
    if s[0] == 0:
        raise ValueError("empty string")
    return strlen(s)

def strlen_(s):
    return capi_strlen(s)


cdef api const char *capi_name() noexcept:
    return "capi fixture"


cdef api void capi_check(int x) except *:
    """KeyError for a negative ``x``."""
    if x < 0:
        raise KeyError(x)

def check(x):
    return capi_check(x)


cdef api int capi_positive(int x) except -1:
    if x <= 0:
        raise ValueError("not positive: %d" % x)
    return x

def positive(x):
    return capi_positive(x)


cdef api double capi_quiet(double x) noexcept:
    """Raises, but ``noexcept``: Cython prints the exception and returns 0."""
    if x < 0:
        raise ValueError("ignored")
    return x

def quiet(x):
    return capi_quiet(x)


cdef api void capi_nothing() noexcept:
    pass


cdef api double capi_sum_ptr(const double *p, Py_ssize_t n) noexcept nogil:
    cdef double t = 0
    cdef Py_ssize_t i
    for i in range(n):
        t += p[i]
    return t


cdef api char **capi_pointers(unsigned char *a, const unsigned char *b, double **c,
                              const char **d, Py_ssize_t *e) noexcept:
    """Only its signature is used."""
    return NULL
