"""Live converter tests: fresh models built with the installed frameworks, converted and compared.

Each test builds the cases of one framework with scripts/make_convert_fixtures.py into a temporary
folder and checks them exactly as test_convert.py checks the committed fixtures. They are marked
``live`` and skipped when the framework is not importable (CI installs none):

    pip install tensorflow-cpu tf_keras torch safetensors
    PYTHONPATH=bindings/python python -m pytest bindings/python/tests/test_convert_live.py -m live
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))

import test_convert as tc                                     # noqa: E402


def _have(*mods) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in mods)


def _builder():
    spec = importlib.util.spec_from_file_location("make_convert_fixtures",
                                                  os.path.join(ROOT, "scripts", "make_convert_fixtures.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(framework: str, tmp_path):
    if not tc.RUNTIME.available:
        pytest.skip("neither the recur Python binding nor the recur CLI is available")
    folder = str(tmp_path / "fixtures")
    _builder().build(folder, only=(framework,))
    manifest = tc.load_manifest(folder)
    assert manifest["cases"]
    checked = 0
    for entry in manifest["cases"]:
        for vid, src, kw in tc.variants(entry):
            case_dir = tmp_path / vid.replace("[", "_").replace("]", "")
            case_dir.mkdir()
            tc.check_case(folder, entry, src, kw, case_dir, manifest)
            checked += 1
    assert checked >= len(manifest["cases"])


@pytest.mark.live
@pytest.mark.skipif(not _have("keras", "tensorflow", "h5py"), reason="Keras 3 / TensorFlow not installed")
def test_live_keras3(tmp_path):
    import keras
    if int(keras.__version__.split(".")[0]) < 3:
        pytest.skip(f"keras {keras.__version__} is not Keras 3")
    _run("keras3", tmp_path)


@pytest.mark.live
@pytest.mark.skipif(not _have("tf_keras", "tensorflow", "h5py"), reason="tf_keras (Keras 2) not installed")
def test_live_keras2(tmp_path):
    _run("keras2", tmp_path)


@pytest.mark.live
@pytest.mark.skipif(not _have("torch", "safetensors"), reason="PyTorch / safetensors not installed")
def test_live_torch(tmp_path):
    _run("torch", tmp_path)


@pytest.mark.live
@pytest.mark.skipif(not _have("tf_keras", "tensorflow", "h5py"), reason="tf_keras (Keras 2) not installed")
def test_live_chapter(tmp_path):
    """The RNN chapter's four subclassed tf.keras models, saved the chapter's way."""
    _run("chapter", tmp_path)


@pytest.mark.live
@pytest.mark.skipif(not _have("keras", "tensorflow", "h5py", "torch"), reason="Keras 3 / PyTorch not installed")
def test_live_subclassed(tmp_path):
    """Subclassed Keras 3 models, a PyTorch encoder-decoder and an output[:, -1] PyTorch classifier."""
    import keras
    if int(keras.__version__.split(".")[0]) < 3:
        pytest.skip(f"keras {keras.__version__} is not Keras 3")
    _run("subclassed", tmp_path)


@pytest.mark.live
@pytest.mark.skipif(not _have("tf_keras", "tensorflow", "h5py"), reason="tf_keras (Keras 2) not installed")
def test_live_tokenizers(tmp_path):
    """Fresh Keras Tokenizers: the runtime's encode gives texts_to_sequences' ids for raw text."""
    import json
    import shutil
    if tc.RUNTIME.binding is None:
        pytest.skip("the recur Python binding is not available")
    folder = tmp_path / "fixtures"
    folder.mkdir()
    _builder().build_tokenizers(str(folder))
    with open(folder / "tokenizers.json") as f:
        cases = json.load(f)["cases"]
    for case in cases:
        shutil.copy(folder / (case["name"] + ".json"), tmp_path / (case["name"] + ".json"))
        out = str(tmp_path / (case["name"] + ".recur"))
        tc.rc.convert(os.path.join(tc.FIXTURES, "ch_sentiment.h5"), out, vocab=str(folder / (case["name"] + ".json")),
                      task="classify", dense_activations=["relu", "sigmoid"])
        with tc.RUNTIME.binding.Model(out) as m:
            for text, want in zip(case["texts"], case["sequences"]):
                assert m.encode(text) == want, f"{case['name']}: {text!r}"


@pytest.mark.live
@pytest.mark.skipif(not _have("keras", "tf_keras", "tensorflow", "h5py"), reason="Keras 3 / tf_keras not installed")
def test_live_attention(tmp_path):
    """Functional encoder-decoders with Attention / AdditiveAttention (Keras 3 and tf.keras): teacher-forced
    probabilities and attention scores, greedy decodes."""
    import keras
    if int(keras.__version__.split(".")[0]) < 3:
        pytest.skip(f"keras {keras.__version__} is not Keras 3")
    _run("attention", tmp_path)
