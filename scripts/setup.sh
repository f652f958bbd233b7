#!/usr/bin/env bash
# Installs what Recur needs to build and test, when it is missing: OpenBLAS and pkg-config (apt), and the
# Python packages the tests and tools use (pip). Safe to run again; does nothing when all is present.
set -euo pipefail

need_apt=()
dpkg -s libopenblas-dev >/dev/null 2>&1 || need_apt+=(libopenblas-dev)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
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

if [ "${1:-}" = "--python" ]; then
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
