#!/usr/bin/env bash
# Installs what Recur needs to build and test, when it is missing: OpenBLAS and pkg-config (apt), and the
# Python packages the tests and tools use (pip). Safe to run again; does nothing when all is present.
#   scripts/setup.sh [--python] [--kernels] [--sanitizers]
#     --python: the Python packages; --kernels: SIMDe headers (the AVX-512 kernel check on machines
#     without AVX-512, bench/kernels/simde_check.sh); --sanitizers: valgrind (scripts/sanitize.sh)
set -euo pipefail
python=0
sanitizers=0
kernels=0
for arg in "$@"; do
    case $arg in
    --python) python=1 ;;
    --kernels) kernels=1 ;;
    --sanitizers) sanitizers=1 ;;
    *) echo "setup: unknown option $arg" >&2; exit 2 ;;
    esac
done

need_apt=()
dpkg -s libopenblas-dev >/dev/null 2>&1 || need_apt+=(libopenblas-dev)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
if [ $kernels -eq 1 ]; then
    [ -f /usr/include/simde/x86/avx512.h ] || need_apt+=(libsimde-dev)
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
    missing=$(python3 - <<'PY'
import importlib.util
need = {"numpy": "numpy", "pytest": "pytest", "h5py": "h5py", "matplotlib": "matplotlib"}
print(" ".join(p for m, p in need.items() if importlib.util.find_spec(m) is None))
PY
)
    if [ -n "$missing" ]; then
        echo "setup: installing $missing (pip)" >&2
        python3 -m pip install -q $missing
    fi
fi
