"""Build step of the Python package: bundles the Recur shared library as recur/_lib/librecur.so and the
default model as recur/_models/alice.recur.

Where the library comes from, in order:
  1. $RECUR_LIBRARY (a built library file);
  2. the repository this directory belongs to (bindings/python inside a checkout): `make build` is run
     there when the Swift toolchain is available (it rebuilds only what changed), and
     .build/release/libRecurC.so is taken (the Makefile's SCRATCH folder: $RECUR_SCRATCH, default .build).
The bundled copy is stripped of debug information and local symbols, as `make install` does
(RECUR_STRIP=0 keeps them).
The model is the checkout's models/alice.recur (3.7 MB, f32: the model `recur generate` uses by
default), when there is one. The checkout's path is recorded in recur/_origin.txt, where
recur.default_model_path() also looks.
Set RECUR_BUNDLE=0 to build a package without the library and the model; they are then searched for at
run time (see recur/_loader.py).

The package has one C module, recur._step (recur/_step.c: State.step without the cost of a ctypes call).
It is compiled from Python's and numpy's headers and include/recur.h — the checkout's, or $RECUR_INCLUDE's (a folder
holding recur.h, e.g. PREFIX/include after `make install`) — and links no library (it calls the functions
of the library the package loads). In a checkout, `python setup.py build_ext --inplace` builds it next to
the sources, for running the package from this folder.
"""

import os
import shutil
import subprocess
from pathlib import Path

import numpy
from setuptools import Extension, setup
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
    if not in_checkout():
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


def in_checkout() -> bool:
    return (ROOT / "Makefile").is_file() and (ROOT / "Package.swift").is_file()


def strip(path: Path) -> None:
    if os.environ.get("RECUR_STRIP", "1") == "0":
        return
    program = shutil.which("strip")
    if program is None:
        print("recur: strip is not installed; the bundled library keeps its debug information")
        return
    subprocess.run([program, "--strip-unneeded", str(path)], check=True)


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        package = Path(self.build_lib) / "recur"
        # The build folder outlives a build: what an earlier one bundled must not leak into this one.
        shutil.rmtree(package / "_lib", ignore_errors=True)
        shutil.rmtree(package / "_models", ignore_errors=True)
        (package / "_origin.txt").unlink(missing_ok=True)
        lib = library_to_bundle()
        if lib is not None:
            dest = package / "_lib"
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(lib, dest / "librecur.so")
            strip(dest / "librecur.so")
        if os.environ.get("RECUR_BUNDLE", "1") != "0" and in_checkout():
            model = ROOT / "models" / "alice.recur"
            if model.is_file():
                (package / "_models").mkdir(parents=True, exist_ok=True)
                shutil.copyfile(model, package / "_models" / "alice.recur")
        if in_checkout():
            (package / "_origin.txt").write_text(str(ROOT) + "\n", encoding="utf-8")


def header_folder() -> str:
    env = os.environ.get("RECUR_INCLUDE")
    if env:
        if not (Path(env) / "recur.h").is_file():
            raise SystemExit(f"recur: RECUR_INCLUDE={env} holds no recur.h")
        return env
    if in_checkout():
        return str(ROOT / "include")
    raise SystemExit("recur: cannot find recur.h to build recur._step: this directory is not inside a Recur "
                     "checkout. Set RECUR_INCLUDE to the folder holding recur.h (PREFIX/include).")


class BinaryDistribution(Distribution):
    """The wheel holds a shared library: it is specific to the platform."""

    def has_ext_modules(self):
        return True


step = Extension("recur._step", sources=["recur/_step.c"], include_dirs=[header_folder(), numpy.get_include()],
                 extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror=incompatible-pointer-types",
                                     "-Werror=implicit-function-declaration"])
setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution, ext_modules=[step])
