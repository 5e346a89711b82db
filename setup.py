"""Builds the native audio core (Cython). Everything else is plain Python (see pyproject.toml)."""
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

COMPILE_ARGS = ["-O3", "-fno-strict-aliasing"]

extensions = [
    Extension(f"native.{path.stem}", [str(path)], extra_compile_args=COMPILE_ARGS)
    for path in sorted(Path("native").glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    )
)
