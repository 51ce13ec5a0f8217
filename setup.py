"""Builds the optional Cython accelerator (emqpy/mqtt/_speedups.pyx); everything else is in
pyproject.toml. Without Cython or a C compiler emqpy installs as pure Python, and
EMQPY_NO_EXTENSIONS=1 at install time skips the build."""
import os

from setuptools import Extension, setup

ext_modules = []
if os.environ.get("EMQPY_NO_EXTENSIONS", "") in ("", "0"):
    try:
        from Cython.Build import cythonize
    except ImportError:
        pass
    else:
        ext_modules = cythonize(
            [Extension("emqpy.mqtt._speedups", ["emqpy/mqtt/_speedups.pyx"], optional=True)],
            compiler_directives={"language_level": "3"}, quiet=True)

setup(ext_modules=ext_modules)
