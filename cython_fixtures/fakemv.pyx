# cython: language_level=3
"""A static type named like Cython's memoryview type (``fakemv.memoryview``) but of another
size: tests/exchange.rs checks that ``CythonSlice`` refuses it as an unknown release before
touching it."""


cdef class memoryview:
    cdef object a
    cdef double b
