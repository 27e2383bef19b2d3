# cython: language_level=3
"""Cython's own costs, the anchors that the root package's benches time side by side with
cyview (``build.rs`` compiles this file with ``-O2`` as the module ``bench_anchors``).

Each ``bench_*`` function repeats one operation ``n`` times in a compiled loop that consumes
every result, so that one Python call costs ``n`` operations plus one call; the benches
call it with ``n`` = criterion's iteration count and divide nothing."""

cimport cython
from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer

ctypedef double (*view_fn)(double[:, ::1] v) noexcept nogil


def bench_assign(obj, Py_ssize_t n):
    """``cdef double[:, ::1] v = obj``, ``n`` times (``n >= 1``): Cython's acquisition of a
    typed memoryview from a buffer exporter, with the release of the previous one. Returns
    ``v.shape[0]``."""
    cdef double[:, ::1] v
    cdef Py_ssize_t i
    for i in range(n):
        v = obj
    return v.shape[0]


def bench_view(double[:, ::1] v):
    """The typed view returned to Python: Cython converts it to a ``_memoryviewslice``
    object (what a ``def`` function returning a memoryview gives its caller)."""
    return v


cdef api double[:, :] anchors_from_object(object obj):
    """``cdef double[:, :] v = obj`` returned to the caller, who owns its acquisition."""
    cdef double[:, :] v = obj
    return v


def slice_geometry(double[:, :] v, Py_ssize_t a, Py_ssize_t b, Py_ssize_t c):
    """``w = v[a:b:c, ::-1]`` of a non-empty result: ``(shape, strides, offset)``, the offset
    of ``w``'s data pointer (its first element) from ``v``'s, in bytes."""
    cdef double[:, :] w = v[a:b:c, ::-1]
    return ((w.shape[0], w.shape[1]), (w.strides[0], w.strides[1]),
            <char *> &w[0, 0] - <char *> &v[0, 0])


def bench_slice(double[:, :] v, Py_ssize_t n, Py_ssize_t a, Py_ssize_t b, Py_ssize_t c):
    """``w = v[a + (i & 1):b:c, ::-1]`` for ``i`` in ``range(n)``, each result consumed
    (``acc += w.shape[0]``). The start alternates between ``a`` and ``a + 1`` so that the C
    compiler cannot compute the slice once before the loop (with loop-invariant bounds gcc
    -O2 hoists it: 26 instructions per iteration remain). Cython 3.3 skips the acquisition
    count when ``w`` keeps the same memoryview object, so no count is taken here. Returns
    ``acc``."""
    cdef double[:, :] w
    cdef Py_ssize_t i, acc = 0
    for i in range(n):
        w = v[a + (i & 1):b:c, ::-1]
        acc += w.shape[0]
    return acc


def bench_slice_counted(double[:, :] v, Py_ssize_t n, Py_ssize_t a, Py_ssize_t b,
                        Py_ssize_t c):
    """As ``bench_slice``, and ``w = None`` after each use: every result takes an
    acquisition of the memoryview object (atomic increment) and gives it back (atomic
    decrement), as a slice that outlives its loop iteration does. Returns ``acc``."""
    cdef double[:, :] w
    cdef Py_ssize_t i, acc = 0
    for i in range(n):
        w = v[a + (i & 1):b:c, ::-1]
        acc += w.shape[0]
        w = None
    return acc


def bench_slice_invariant(double[:, :] v, Py_ssize_t n, Py_ssize_t a, Py_ssize_t b,
                          Py_ssize_t c):
    """``w = v[a:b:c, ::-1]`` with loop-invariant bounds (which gcc hoists out of the
    loop). Returns ``acc``."""
    cdef double[:, :] w
    cdef Py_ssize_t i, acc = 0
    for i in range(n):
        w = v[a:b:c, ::-1]
        acc += w.shape[0]
    return acc


def bench_call_capsule(capsule, double[:, ::1] v, Py_ssize_t n):
    """Calls the ``double (__Pyx_memviewslice)`` function of a ``__pyx_capi__`` capsule
    ``n`` times with ``v`` (copied by value each time, as any call does). Returns the sum of
    the results."""
    cdef view_fn f = <view_fn> PyCapsule_GetPointer(capsule, PyCapsule_GetName(capsule))
    cdef double total = 0
    cdef Py_ssize_t i
    with nogil:
        for i in range(n):
            total += f(v)
    return total
