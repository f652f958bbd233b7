"""Installation and finding things: recur.default_model_path() (the lookup of the `recur` command),
`pip install ./bindings/python` in a fresh virtual environment (the bundled library stripped, the default
model bundled, the READMEs' examples run from any folder), and the converters' `convert` extra."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from conftest import PACKAGE_DIR, ROOT, run_cli

MODEL = ROOT / "models" / "alice.recur"


def clean_env(**extra) -> dict:
    """The environment without RECUR_* and PYTHONPATH, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECUR_") and k != "PYTHONPATH"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_python(code: str, env: dict, cwd, python: str = sys.executable) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-c", textwrap.dedent(code)], env=env, cwd=str(cwd), capture_output=True,
                          text=True, timeout=300)


DEFAULT = """
    import recur
    try:
        print(recur.default_model_path())
    except FileNotFoundError as e:
        print("ERROR", e)
"""


def default_model(env: dict, cwd) -> str:
    p = run_python(DEFAULT, env, cwd)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


@pytest.fixture
def layout(tmp_path, models, library):
    """Two installed-style prefixes with different models in share/recur/alice.recur: one named by
    RECUR_PREFIX, one holding (a link to) the library under test in lib/; a copy of the library outside
    any lib/ folder; and an empty working directory."""
    d = {"tmp": tmp_path}
    for name, model in (("prefix", "gru"), ("libprefix", "lstm")):
        share = tmp_path / name / "share" / "recur"
        share.mkdir(parents=True)
        shutil.copyfile(models[model], share / "alice.recur")
        d[name] = tmp_path / name
    (tmp_path / "libprefix" / "lib").mkdir()
    os.symlink(library, tmp_path / "libprefix" / "lib" / "librecur.so")
    (tmp_path / "elsewhere").mkdir()
    shutil.copyfile(library, tmp_path / "elsewhere" / "librecur.so")
    (tmp_path / "cwd").mkdir()
    d["elsewhere"], d["cwd"] = tmp_path / "elsewhere", tmp_path / "cwd"
    return d


def test_default_model_env_first_and_must_exist(layout, models):
    cwd = layout["cwd"]
    env = clean_env(PYTHONPATH=PACKAGE_DIR, RECUR_PREFIX=layout["prefix"], RECUR_MODEL=models["rnn"])
    assert default_model(env, cwd) == models["rnn"]
    env["RECUR_MODEL"] = str(layout["tmp"] / "none.recur")
    out = default_model(env, cwd)
    assert out == f"ERROR RECUR_MODEL={layout['tmp'] / 'none.recur'} does not name a file"


def test_default_model_prefix_then_library_prefix_then_checkout(layout):
    cwd = layout["cwd"]
    # $RECUR_PREFIX/share/recur before the library's own prefix.
    env = clean_env(PYTHONPATH=PACKAGE_DIR, RECUR_PREFIX=layout["prefix"],
                    RECUR_LIBRARY=layout["libprefix"] / "lib" / "librecur.so")
    assert default_model(env, cwd) == str(layout["prefix"] / "share" / "recur" / "alice.recur")
    # PREFIX/share/recur of the library in use, PREFIX/lib/librecur.so.
    del env["RECUR_PREFIX"]
    assert default_model(env, cwd) == str(layout["libprefix"] / "share" / "recur" / "alice.recur")
    # A library outside an installed layout: the checkout this package is used from, even when the
    # current directory has a models/alice.recur too.
    env["RECUR_LIBRARY"] = str(layout["elsewhere"] / "librecur.so")
    (cwd / "models").mkdir()
    shutil.copyfile(layout["prefix"] / "share" / "recur" / "alice.recur", cwd / "models" / "alice.recur")
    assert default_model(env, cwd) == str(MODEL)


def test_default_model_outside_a_checkout(layout, tmp_path):
    """A copy of the package outside any checkout finds the checkout it records, then the current
    directory's models/alice.recur; with neither, the error names every place it looked."""
    pkg = tmp_path / "site"
    shutil.copytree(PACKAGE_DIR / "recur", pkg / "recur",
                    ignore=shutil.ignore_patterns("_lib", "_models", "_origin.txt", "__pycache__"))
    cwd = layout["cwd"]
    env = clean_env(PYTHONPATH=pkg, RECUR_LIBRARY=layout["elsewhere"] / "librecur.so")
    out = default_model(env, cwd)
    assert out.startswith("ERROR no default model (alice.recur) was found; looked in: ")
    for place in (pkg / "recur" / "_models" / "alice.recur", cwd / "models" / "alice.recur"):
        assert str(place) in out
    assert "RECUR_MODEL" in out and "\n" not in out

    (cwd / "models").mkdir()
    shutil.copyfile(layout["prefix"] / "share" / "recur" / "alice.recur", cwd / "models" / "alice.recur")
    assert default_model(env, cwd) == str(cwd / "models" / "alice.recur")

    checkout = tmp_path / "checkout"
    (checkout / "models").mkdir(parents=True)
    shutil.copyfile(layout["libprefix"] / "share" / "recur" / "alice.recur", checkout / "models" / "alice.recur")
    (pkg / "recur" / "_origin.txt").write_text(f"{checkout}\n")
    assert default_model(env, cwd) == str(checkout / "models" / "alice.recur")


def test_library_file_names_the_mapped_file(library):
    """The library's own path, as the dynamic loader reports it (used when it was found by name)."""
    import recur._capi
    from recur import _loader
    path = _loader._dladdr_path(recur._capi.lib())
    assert path is not None and os.path.realpath(path) == os.path.realpath(library)
    assert os.path.realpath(_loader.library_file()) == os.path.realpath(library)


# --- pip install ---------------------------------------------------------------------------------------

def readme_example(path: Path) -> str:
    return path.read_text().split("```python\n", 1)[1].split("```", 1)[0]


def test_pip_install_into_a_fresh_venv_runs_the_readme_examples(tmp_path, library, cli):
    """`pip install ./bindings/python` in a new virtual environment bundles the library (stripped) and the
    default model, and builds the C module: both READMEs' examples then run with no RECUR_* variable, from
    outside the checkout, and the top-level one prints what `recur generate` prints."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    # numpy (the dependency) from the environment running these tests, so pip need not fetch it.
    pure = Path(run_python("import sysconfig; print(sysconfig.get_paths()['purelib'])", {}, tmp_path, py).stdout.strip())
    outer = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()])
    (pure / "outer.pth").write_text("".join(p + "\n" for p in outer))
    env = clean_env()
    p = subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(PACKAGE_DIR)],
                       env=clean_env(RECUR_LIBRARY=library),  # bundle exactly the library under test
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    installed = pure / "recur"
    assert (installed / "_models" / "alice.recur").read_bytes() == MODEL.read_bytes()
    assert (installed / "_origin.txt").read_text().strip() == str(ROOT)
    # The extra that the converters' error and the READMEs name brings h5py.
    meta = run_python("""
        from importlib.metadata import metadata
        m = metadata("recur")
        print(m.get_all("Provides-Extra")); print(m.get_all("Requires-Dist"))
    """, env, tmp_path, py).stdout
    assert "'convert'" in meta and """'h5py; extra == "convert"'""" in meta
    sections = subprocess.run(["readelf", "-S", str(installed / "_lib" / "librecur.so")], capture_output=True,
                              text=True, check=True).stdout
    assert ".debug_info" not in sections and ".symtab" not in sections

    run = run_python(readme_example(ROOT / "README.md"), env, tmp_path, py)
    assert run.returncode == 0, run.stderr
    command = run_cli(cli, "generate", MODEL, "--prompt", "Alice", "--tokens", 200, "--temperature", 0.8,
                      "--seed", 42, "--no-prompt").stdout
    assert run.stdout == command and run.stdout.endswith("\n") and len(run.stdout) > 200

    check = ("\nimport recur as _r\nprint('LIB', _r.library_path())\nprint('MODEL', _r.default_model_path())\n"
             "print('STEP', type(_r.Model(_r.default_model_path()).new_state().step).__module__)\n")
    run = run_python(readme_example(PACKAGE_DIR / "README.md") + check, env, tmp_path, py)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "73 tokens"
    assert lines[-3] == f"LIB {installed / '_lib' / 'librecur.so'}"
    assert lines[-2] == f"MODEL {installed / '_models' / 'alice.recur'}"
    assert lines[-1] == "STEP recur._step"                  # the package's C module was built and is used


# --- the converters' extra -------------------------------------------------------------------------------

@pytest.mark.parametrize("fixture", ["k2_gru_hard.h5", "k3_gru_char.keras"])
def test_convert_without_h5py_names_the_extra(tmp_path, fixture):
    """Keras files need h5py, which `pip install './bindings/python[convert]'` brings: without it,
    recur-convert stops with one line saying so, and writes nothing."""
    src = ROOT / "tests" / "fixtures" / "convert" / fixture
    out = tmp_path / "out.recur"
    code = f"""
        import sys
        sys.modules["h5py"] = None          # as if h5py were not installed
        from recur.convert.__main__ import main
        sys.exit(main([{str(src)!r}, {str(out)!r}, "--chars", {str(src.parent / 'chars.txt')!r}]))
    """
    p = run_python(code, clean_env(PYTHONPATH=PACKAGE_DIR), tmp_path)
    assert p.returncode == 1 and p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("recur-convert: error: ") and "h5py" in lines[0]
    assert "pip install './bindings/python[convert]'" in lines[0]
    assert not out.exists()
