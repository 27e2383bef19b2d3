# cython: language_level=3
"""cyview example: Cython calling Rust kernels with typed memoryviews, and a ``cdef api``
function for Rust to call.

Build: ``cargo build --release`` here (a static library), then
``MIXED_KERNEL_LIB=target/release/libmixed_kernel.a python setup.py build_ext --inplace``.
"""

# No header: Cython emits these prototypes after its __Pyx_memviewslice typedef and passes
# the slices by value (the Rust side takes cyview::MemviewSlice).
cdef extern double kernel_weighted_sum(const double[:, :] v, const double[::1] w) noexcept nogil
cdef extern int kernel_scale(double[:, ::1] v, double k) noexcept nogil


def weighted_sum(const double[:, :] v, const double[::1] w):
    """sum(v[i, j] * w[j]), computed in Rust without the GIL."""
    cdef double r
    with nogil:
        r = kernel_weighted_sum(v, w)
    if r != r:
        raise ValueError("shapes (%d, %d) and (%d,) do not match" % (v.shape[0], v.shape[1], w.shape[0]))
    return r


def scale(double[:, ::1] v, double k):
    """v *= k in place, in Rust, without the GIL: no other thread may use v meanwhile."""
    cdef int rc
    with nogil:
        rc = kernel_scale(v, k)
    if rc != 0:
        raise ValueError("kernel_scale refused the view")


cdef api double row_sum(const double[:, :] v, Py_ssize_t i) except? -1:
    """For Rust: the sum of row ``i`` (IndexError outside the rows)."""
    if not 0 <= i < v.shape[0]:
        raise IndexError("row %d out of range for %d rows" % (i, v.shape[0]))
    cdef double total = 0
    cdef Py_ssize_t j
    for j in range(v.shape[1]):
        total += v[i, j]
    return total


cdef api const double[:, :] as_view(object obj):
    """For Rust: ``cdef const double[:, :] v = obj``, owned by the caller."""
    cdef const double[:, :] v = obj
    return v
