#!/usr/bin/env bash
# Installs what Recur needs to build and test, when it is missing: OpenBLAS, libdeflate and pkg-config
# (apt), and the Python packages the tests and tools use (pip, into the project's virtual environment
# .venv). Safe to run again; does nothing when all is present.
#   scripts/setup.sh [--python] [--kernels] [--sanitizers] [--ray]
#     --python: .venv (made from $PYTHON, default python3; Debian's python3-venv is installed through apt
#     when the interpreter lacks ensurepip, and python3-dev when it lacks its C headers, which the Python
#     package's C module is built with) with numpy, pytest, h5py, matplotlib, nltk (BLEU reference) and
#     setuptools (that build). The scripts run Python
#     as .venv/bin/python, so the system interpreter is never changed (PEP 668). An existing .venv is kept;
#     when PYTHON is set and .venv was made from another interpreter, .venv is made again.
#     --kernels: SIMDe headers (the AVX-512 kernel check on machines without AVX-512,
#     bench/kernels/simde_check.sh) and, on x86-64, an AArch64 cross compiler with its C library and
#     qemu-aarch64 (the NEON kernel check, bench/kernels/neon_check.sh); --sanitizers: valgrind
#     (scripts/sanitize.sh); --ray: a second environment .venv-ray (made from .venv's interpreter, so
#     --python too) with numpy, pytest, pyarrow and ray[data], for the Ray pipelines (examples/ray) only:
#     Ray and its dependencies stay out of .venv. Prints "setup: ray unavailable: REASON" and exits 0
#     when pip cannot install it (no network, no wheel for this platform), so that the caller can skip.
set -euo pipefail
python=0
ray=0
sanitizers=0
kernels=0
for arg in "$@"; do
    case $arg in
    --python) python=1 ;;
    --kernels) kernels=1 ;;
    --sanitizers) sanitizers=1 ;;
    --ray) ray=1; python=1 ;;
    *) echo "setup: unknown option $arg" >&2; exit 2 ;;
    esac
done

need_apt=()
dpkg -s libopenblas-dev >/dev/null 2>&1 || need_apt+=(libopenblas-dev)
dpkg -s libdeflate-dev >/dev/null 2>&1 || need_apt+=(libdeflate-dev)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
if [ $kernels -eq 1 ]; then
    [ -f /usr/include/simde/x86/avx512.h ] || need_apt+=(libsimde-dev)
    if [ "$(uname -m)" = x86_64 ]; then
        command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need_apt+=(gcc-aarch64-linux-gnu)
        [ -f /usr/aarch64-linux-gnu/lib/libc.a ] || need_apt+=(libc6-dev-arm64-cross)
        command -v qemu-aarch64 >/dev/null 2>&1 || need_apt+=(qemu-user)
    fi
fi
if [ $sanitizers -eq 1 ]; then
    command -v valgrind >/dev/null 2>&1 || need_apt+=(valgrind)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing ${need_apt[*]} (apt)" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "setup: the Swift toolchain (swift 6) is required to build Recur; see https://swift.org/install" >&2
    exit 1
fi

if [ $python -eq 1 ]; then
    ROOT=$(cd "$(dirname "$0")/.." && pwd)
    VENV=$ROOT/.venv
    PY=${PYTHON:-python3}
    PACKAGES=(numpy pytest h5py matplotlib nltk setuptools)   # module names, which are also the pip names here
    # "base prefix, major.minor" of an interpreter, or nothing when it does not run.
    base_of() { "$1" -c 'import sys; print(sys.base_prefix, "%d.%d" % sys.version_info[:2])' 2>/dev/null || true; }
    apt_install() {
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        echo "setup: installing $* (apt)" >&2
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
    }
    if ! command -v "$PY" >/dev/null 2>&1; then
        if [ -z "${PYTHON:-}" ] && command -v apt-get >/dev/null 2>&1; then
            apt_install python3 python3-venv
        else
            echo "setup: $PY not found; set PYTHON to a Python 3 interpreter" >&2
            exit 1
        fi
    fi
    want=$(base_of "$PY")
    [ -n "$want" ] || { echo "setup: $PY does not run" >&2; exit 1; }
    # The interpreter itself, not a wrapper or symlink in front of it (a pyenv shim, a directory on
    # PATH): the environment links to it.
    exe=$("$PY" -c 'import os, sys; print(os.path.realpath(sys.executable))')

    # The Debian package of $exe's part $1 (venv, dev): python3-$1 for the distribution's python3, else
    # pythonX.Y-$1; fails when dpkg does not own $exe (a pyenv or self-built interpreter).
    debian_package() {
        command -v dpkg >/dev/null 2>&1 && dpkg -S "$exe" >/dev/null 2>&1 || return 1
        if [ "$(base_of /usr/bin/python3)" = "$want" ]; then
            echo "python3-$1"
        else
            echo "python$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-$1"
        fi
    }

    # Two runs at once (two test commands) must not build the environment over each other.
    mkdir -p "$VENV"
    if command -v flock >/dev/null 2>&1; then
        exec 9<"$VENV"
        flock 9
    fi
    have=""
    [ -x "$VENV/bin/python" ] && have=$(base_of "$VENV/bin/python")
    make_venv=0
    if [ -z "$have" ]; then
        make_venv=1
    elif [ -n "${PYTHON:-}" ] && [ "$have" != "$want" ]; then
        if [ ! -f "$VENV/.made-by-setup" ]; then
            echo "setup: $VENV was made from another interpreter ($have) than PYTHON=$PYTHON ($want)," \
                "and not by this script; remove it, or run without PYTHON" >&2
            exit 1
        fi
        echo "setup: $VENV was made from $have; making it again from $PYTHON" >&2
        make_venv=1
    fi
    if [ $make_venv -eq 1 ]; then
        # Debian and Ubuntu ship venv's ensurepip (which installs pip into the environment) separately.
        if ! "$PY" -c 'from ensurepip import bootstrap' >/dev/null 2>&1; then
            if pkg=$(debian_package venv); then
                apt_install "$pkg"
            else
                echo "setup: $PY ($exe) cannot make a virtual environment: it has no ensurepip module" >&2
                exit 1
            fi
        fi
        echo "setup: making the virtual environment $VENV from $exe" >&2
        "$exe" -m venv --clear "$VENV" >&2
        echo "$want" >"$VENV/.made-by-setup"
    fi
    # The Python package's C module (bindings/python/recur/_step.c) is compiled against the interpreter's
    # headers, which Debian and Ubuntu ship apart from it (python3-dev).
    include=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
    if [ ! -f "$include/Python.h" ]; then
        if pkg=$(debian_package dev); then
            apt_install "$pkg"
        else
            echo "setup: $exe has no C headers ($include/Python.h), which the Python package's C module needs" >&2
            exit 1
        fi
    fi
    missing=$("$VENV/bin/python" - "${PACKAGES[@]}" <<'PY'
import importlib.util, sys
print(" ".join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))
PY
)
    if [ -n "$missing" ]; then
        echo "setup: installing $missing into $VENV (pip)" >&2
        # shellcheck disable=SC2086
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check $missing
    fi
fi

if [ $ray -eq 1 ]; then
    ROOT=$(cd "$(dirname "$0")/.." && pwd)
    RVENV=$ROOT/.venv-ray
    mkdir -p "$RVENV"
    if command -v flock >/dev/null 2>&1; then
        exec 8<"$RVENV"
        flock 8
    fi
    base=$("$ROOT/.venv/bin/python" -c 'import sys; print(sys.base_prefix)')
    if [ -x "$RVENV/bin/python" ] && [ "$("$RVENV/bin/python" -c 'import sys; print(sys.base_prefix)' 2>/dev/null)" != "$base" ]; then
        echo "setup: $RVENV was made from another interpreter; making it again" >&2
        rm -rf "$RVENV/bin" "$RVENV/lib" "$RVENV/include" "$RVENV/pyvenv.cfg"
    fi
    if [ ! -x "$RVENV/bin/python" ]; then
        # The interpreter .venv was made from (its base), not .venv's own python (a venv of a venv
        # would see .venv's packages' paths).
        exe=$("$ROOT/.venv/bin/python" -c 'import os, sys; print(os.path.join(sys.base_prefix, "bin", "python3"))')
        [ -x "$exe" ] || exe=$(readlink -f "$ROOT/.venv/bin/python")
        echo "setup: making the virtual environment $RVENV from $exe" >&2
        "$exe" -m venv "$RVENV" >&2
    fi
    if ! "$RVENV/bin/python" -c 'import numpy, pytest, pyarrow, ray.data' >/dev/null 2>&1; then
        echo "setup: installing numpy, pytest, pyarrow and ray[data] into $RVENV (pip)" >&2
        start=$(date +%s)
        if ! "$RVENV/bin/python" -m pip install -q --disable-pip-version-check numpy pytest pyarrow "ray[data]" >&2; then
            echo "setup: ray unavailable: pip could not install ray[data] into $RVENV"
            exit 0
        fi
        echo "setup: installed Ray into $RVENV in $(( $(date +%s) - start )) s" >&2
    fi
fi
