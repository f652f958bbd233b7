#!/usr/bin/env bash
# The quick start: installs what is missing, builds Recur in release mode and streams text from the shipped
# model (models/alice.recur) continuing the prompt "Alice". Extra arguments go to `recur generate`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
make build >&2
exec .build/release/recur generate "$@"
