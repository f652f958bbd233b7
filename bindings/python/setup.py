"""Build step of the Python package: bundles the Recur shared library as recur/_lib/librecur.so.

Where the library comes from, in order:
  1. $RECUR_LIBRARY (a built library file);
  2. the repository this directory belongs to (bindings/python inside a checkout): `make build` is run
     there when the Swift toolchain is available (it rebuilds only what changed), and
     .build/release/libRecurC.so is taken (the Makefile's SCRATCH folder: $RECUR_SCRATCH, default .build).
Set RECUR_BUNDLE=0 to build a package without the library; it then searches for one at run time
(see recur/_loader.py).
"""

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def library_to_bundle() -> "Path | None":
    if os.environ.get("RECUR_BUNDLE", "1") == "0":
        return None
    env = os.environ.get("RECUR_LIBRARY")
    if env:
        if not Path(env).is_file():
            raise SystemExit(f"recur: RECUR_LIBRARY={env} is not a file")
        return Path(env)
    if not ((ROOT / "Makefile").is_file() and (ROOT / "Package.swift").is_file()):
        raise SystemExit("recur: cannot find the Recur library to bundle: this directory is not inside a Recur "
                         "checkout. Set RECUR_LIBRARY=/path/to/librecur.so, or RECUR_BUNDLE=0 to build without it.")
    scratch = os.environ.get("RECUR_SCRATCH", ".build")
    built = ROOT / scratch / "release" / "libRecurC.so"
    if shutil.which("swift") and shutil.which("make"):
        subprocess.run(["make", "-C", str(ROOT), "build", f"SCRATCH={scratch}"], check=True,
                       stdout=subprocess.DEVNULL if os.environ.get("RECUR_QUIET") else None)
    if not built.is_file():
        raise SystemExit(f"recur: {built} does not exist and could not be built (the Swift toolchain is needed: "
                         "run `make build` in the repository), or set RECUR_LIBRARY.")
    return built


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        lib = library_to_bundle()
        if lib is not None:
            dest = Path(self.build_lib) / "recur" / "_lib"
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(lib, dest / "librecur.so")


class BinaryDistribution(Distribution):
    """The wheel holds a shared library: it is specific to the platform."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)
