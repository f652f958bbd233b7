"""The accuracy figures the documents give for the quantized shipped generator are the ones the `recur`
command measures today (scripts/quantization_figures.py --check)."""
import os
import subprocess
import sys

from conftest import ROOT


def test_quantization_figures_match_the_documents(cli):
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "quantization_figures.py"), "--check"],
                       capture_output=True, text=True, env={**os.environ, "RECUR_CLI": cli}, timeout=900)
    assert p.returncode == 0, p.stderr
