# cython: language_level=3
"""Fixture for the finding `transpose/indirect-middle-dimension`: Cython's transpose checks
only the dimensions it swaps for a suboffset, so `v[None, :, :].T` of a view whose first
dimension is indirect moves the direct dimensions across the pointer table."""
from cython cimport view


def middle_indirect_transpose(obj, Py_ssize_t i, Py_ssize_t j, Py_ssize_t k):
    """`t = v[None, :, :].T` for a 2-d `v` acquired from `obj` (any buffer, indirect
    allowed), then the address Cython computes for `&t[i, j, k]`, with t's geometry."""
    cdef const double[::view.generic, ::view.generic] v = obj
    # `.T` at compile time is refused for generic dimensions; Python-level `.T` runs
    # `transpose_memslice` on the memoryview object, as `memoryview.T` does in any release.
    cdef const double[::view.generic, ::view.generic, ::view.generic] t = (<object> v[None, :, :]).T
    cdef size_t address = <size_t> &t[i, j, k]
    return (address, [t.shape[d] for d in range(3)], [t.strides[d] for d in range(3)],
            [t.suboffsets[d] for d in range(3)])
