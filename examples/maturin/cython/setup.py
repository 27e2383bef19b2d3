"""Builds the Cython module `cyfuncs` (run.sh installs it with pip)."""
from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    name="cyfuncs",
    version="0.1.0",
    ext_modules=cythonize([Extension("cyfuncs", ["cyfuncs.pyx"])]),
)
