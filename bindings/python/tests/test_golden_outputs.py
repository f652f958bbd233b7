"""The shipped models' outputs over a fixed 500-token input, at every kernel level this CPU has, are the
ones recorded in tests/golden/outputs.json, bit for bit (scripts/golden_outputs.py --check): a change of
the runtime that is not meant to change results must leave them as they are."""
import os
import subprocess
import sys

from conftest import ROOT


def test_outputs_are_the_recorded_ones(cli):
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "golden_outputs.py"), "--check"],
                       capture_output=True, text=True, env={**os.environ, "RECUR_CLI": cli}, timeout=900)
    assert p.returncode == 0, p.stderr[-4000:]
    assert "reproduced bit for bit" in p.stdout
