"""Builds the `mixed` extension, linking the Rust static library named by MIXED_KERNEL_LIB
(and the system libraries Rust's standard library needs, MIXED_KERNEL_LIBS)."""
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

lib = os.environ["MIXED_KERNEL_LIB"]
libs = os.environ.get("MIXED_KERNEL_LIBS", "-lgcc_s -lpthread -lm -ldl").split()
setup(
    name="mixed",
    ext_modules=cythonize(
        [Extension("mixed", ["mixed.pyx"], extra_objects=[lib], extra_link_args=libs)],
        language_level=3,
    ),
)
