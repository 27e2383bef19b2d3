# cython: language_level=3
"""A buffer exporter whose shape, strides and suboffsets arrays continue past ``ndim`` with
chosen padding, for tests/too_many_items.rs: it runs Python-level ``m[items]`` with more
items than dimensions on two exporters that are identical within ``ndim`` and differ only in
that padding, to tell Cython's reads past the slice's dimensions from its deterministic
errors.

``Padded(obj, shape_pad, stride_pad, suboffset_pad)`` re-exports ``obj``'s buffer (same data
pointer, item size, format, shape, strides; the suboffsets array always present, ``-1`` for a
direct dimension) with each array followed by entries (32 in all) of the given value.
``plain_memoryview(obj)`` is Cython's own ``memoryview`` class (not ``_memoryviewslice``)
over ``obj``: its ``__getitem__`` reads the exporter's arrays directly.
"""
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_FULL_RO
from cpython cimport array
import array


cdef class Padded:
    cdef Py_buffer src
    cdef bint held
    cdef Py_ssize_t shape[32]
    cdef Py_ssize_t strides[32]
    cdef Py_ssize_t suboffsets[32]

    def __cinit__(self, obj, Py_ssize_t shape_pad, Py_ssize_t stride_pad,
                  Py_ssize_t suboffset_pad):
        cdef int d
        self.held = False
        PyObject_GetBuffer(obj, &self.src, PyBUF_FULL_RO)
        self.held = True
        if self.src.ndim > 8:
            raise ValueError("at most 8 dimensions")
        for d in range(32):
            self.shape[d] = shape_pad
            self.strides[d] = stride_pad
            self.suboffsets[d] = suboffset_pad
        for d in range(self.src.ndim):
            self.shape[d] = self.src.shape[d]
            self.strides[d] = self.src.strides[d]
            self.suboffsets[d] = self.src.suboffsets[d] if self.src.suboffsets else -1

    def __dealloc__(self):
        if self.held:
            PyBuffer_Release(&self.src)

    def __getbuffer__(self, Py_buffer *view, int flags):
        view.buf = self.src.buf
        view.obj = self
        view.len = self.src.len
        view.itemsize = self.src.itemsize
        view.readonly = 1
        view.format = self.src.format
        view.ndim = self.src.ndim
        view.shape = self.shape
        view.strides = self.strides
        view.suboffsets = self.suboffsets
        view.internal = NULL

    def __releasebuffer__(self, Py_buffer *view):
        pass


def plain_memoryview(obj):
    """Cython's ``memoryview`` class of this module over ``obj`` (``PyBUF_FULL_RO``)."""
    cdef double[::1] probe = array.array('d', [0.0])
    return type(probe).__mro__[1](obj, PyBUF_FULL_RO, False)
