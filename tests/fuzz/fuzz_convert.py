#!/usr/bin/env python3
"""Fuzzes the converters (``recur.convert``) in-process with mutations of the committed fixtures.

Every input is one of the fixtures of ``tests/fixtures/convert`` (a ``.keras`` archive, a Keras 3
``.weights.h5`` with its config, a legacy Keras 2 ``.h5``, a TF checkpoint with its config, a
``torch.save`` file, a ``.safetensors`` file), mutated, written to a fresh folder, and converted with
``recur.convert.convert``. The contract checked for each one:

- the conversion either succeeds, and the output parses (``recur.format.read``, checksum verified), or
  raises ``ConvertError`` with a non-empty message of one line;
- a failed conversion leaves no output file and no temporary file;
- nothing else escapes: any other exception, a MemoryError under the address-space limit (the process's
  baseline + ``--memory-mb``), or an input that takes longer than ``--timeout`` seconds is a failure. Its
  files, options and traceback are saved under ``--artifacts``.

Mutations are byte-level (bit flips, interesting integers, truncation, deletion, duplication, splicing
with another fixture) and structure-aware, so that they get past the checksums and framing the readers
verify first: zip archives are unpacked, one member mutated and repacked (stored or deflated); pickles are
rewritten opcode by opcode (integers and strings replaced); JSON (safetensors headers, Keras configs,
``config.json``) is parsed, one value replaced by an interesting one, and written back; HDF5 files are
rewritten through h5py (a dataset reshaped, retyped or removed, an attribute mutated).

With ``--atheris`` (needs ``pip install atheris``) libFuzzer drives the same mutations: its input bytes
choose the fixture and seed the mutations, and coverage of the converters guides it. Without it a seeded
loop runs (``--seed``), so a run is reproducible from its seed and the number of executions.

    python3 tests/fuzz/fuzz_convert.py --seconds 60
    python3 tests/fuzz/fuzz_convert.py --seconds 600 --seed 7 --artifacts /tmp/convert-crashes
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickletools
import random
import resource
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
import zlib

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "convert")

INTERESTING = [0, 1, 2, 3, 7, 8, 16, 20, 48, 64, 127, 128, 255, 256, 1000, 4096, 65535, 65536, 2**20, 2**24,
               2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**40, 2**53, 2**62, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**70,
               -1, -2, -128, -(2**31), -(2**63)]


class Slow(BaseException):
    """Raised by the alarm in a conversion that takes too long (a BaseException, so that no handler in
    the converters swallows it)."""


# --- Seeds --------------------------------------------------------------------------------------------

class Seed:
    """One conversion case: its files (name → bytes), the source file's name and the options."""

    def __init__(self, name: str, files: dict, src: str, kw: dict, kind: str):
        self.name, self.files, self.src, self.kw, self.kind = name, files, src, kw, kind


def load_seeds(folder: str = FIXTURES) -> list:
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    seeds, seen = [], set()
    for entry in manifest["cases"]:
        if entry["task"] == "seq2seq":          # options naming vocabulary files; their readers are seeded by others
            continue
        for fmt, spec in entry["files"].items():
            if fmt == "savedmodel":             # a directory; its variables are a checkpoint, seeded by others
                continue
            kw = dict(entry.get("options", {}))
            src, config = (spec[0], spec[1]) if isinstance(spec, list) else (spec, None)
            names = [src] if fmt != "checkpoint" else [src + ".index", src + ".data-00000-of-00001"]
            if config:
                names.append(config)
                kw["config"] = config
            files = {n: open(os.path.join(folder, n), "rb").read() for n in names}
            kind = {"keras": "zip", "torch": "zip", "safetensors": "safetensors", "checkpoint": "checkpoint"}.get(fmt, "h5")
            seed = Seed(f"{entry['name']}[{fmt}]", files, src, kw, kind)
            if (fmt, src) not in seen:
                seen.add((fmt, src))
                seeds.append(seed)
    return seeds


# --- Mutators -----------------------------------------------------------------------------------------

def _int_bytes(rnd: random.Random) -> bytes:
    v = rnd.choice(INTERESTING)
    width = rnd.choice([1, 2, 4, 8])
    return (v % (1 << (8 * width))).to_bytes(width, "little")


def mutate_bytes(b: bytes, rnd: random.Random, others: list) -> bytes:
    b = bytearray(b)
    for _ in range(rnd.choice([1, 1, 1, 2, 3, 8])):
        op = rnd.randrange(8)
        if not b:
            b += bytes([rnd.randrange(256)])
        i = rnd.randrange(len(b))
        if op == 0:
            b[i] ^= 1 << rnd.randrange(8)
        elif op == 1:
            b[i] = rnd.choice([0, 1, 0x7F, 0x80, 0xFF, rnd.randrange(256)])
        elif op == 2:
            v = _int_bytes(rnd)
            b[i:i + len(v)] = v
        elif op == 3:
            del b[rnd.randrange(len(b) + 1):]
        elif op == 4:
            j = min(len(b), i + rnd.choice([1, 4, 16, 256, 4096]))
            del b[i:j]
        elif op == 5:
            j = min(len(b), i + rnd.choice([1, 4, 16, 256, 4096]))
            b[i:i] = b[i:j] * rnd.choice([1, 2, 16])
        elif op == 6 and others:
            o = rnd.choice(others)
            if o:
                k = rnd.randrange(len(o))
                b[i:] = o[k:k + rnd.choice([16, 256, 4096, len(o)])]
        else:
            b[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.choice([1, 4, 8])))
    return bytes(b)


def _interesting_json(rnd: random.Random):
    choice = rnd.randrange(12)
    if choice < 4:
        return rnd.choice(INTERESTING)
    if choice == 4:
        return rnd.choice([0.5, -0.0, 1.7e308, 1e-300, 3.0])
    if choice == 5:
        return rnd.choice(["", "F32", "BF16", "U8", "relu", "hard_sigmoid", "GRU", "Bidirectional", "x" * 300])
    if choice == 6:
        return [rnd.choice(INTERESTING) for _ in range(rnd.choice([0, 1, 2, 3, 9]))]
    if choice == 7:
        return {}
    if choice == 8:
        return None
    if choice == 9:
        return rnd.choice([True, False])
    if choice == 10:
        return f"__DEEP_{rnd.choice([50, 500, 5000, 100000])}__"     # nesting, spliced in as text by _dumps
    return {"a": [1, {"b": None}]}


def _dumps(obj) -> str:
    text = json.dumps(obj)
    while "\"__DEEP_" in text:
        i = text.index("\"__DEEP_")
        j = text.index("__\"", i + 8)
        n = int(text[i + 8:j])
        text = text[:i] + "[" * n + "]" * n + text[j + 3:]
    return text


def _json_nodes(obj):
    """(path, value) of every node, outermost first (iterative: a mutated input may nest deeply)."""
    stack = [((), obj)]
    while stack:
        path, x = stack.pop()
        yield path, x
        if len(path) < 40:
            if isinstance(x, dict):
                stack.extend((path + (k,), v) for k, v in x.items())
            elif isinstance(x, list):
                stack.extend((path + (i,), v) for i, v in enumerate(x))


def mutate_json_obj(obj, rnd: random.Random):
    """Mutates a freshly parsed JSON value in place and returns it."""
    nodes = list(_json_nodes(obj))
    for _ in range(rnd.choice([1, 1, 2, 3])):
        path, _ = rnd.choice(nodes)
        if not path:
            continue
        parent = obj
        for p in path[:-1]:
            parent = parent[p]
        key = path[-1]
        op = rnd.randrange(6)
        if op == 0 and isinstance(parent, dict):
            del parent[key]
        elif op == 1 and isinstance(parent, list):
            parent.insert(key, json.loads(json.dumps(parent[key])))
        elif op == 2 and isinstance(parent[key], list) and parent[key]:
            parent[key] = parent[key][:-1] if rnd.random() < 0.5 else parent[key] + parent[key][-1:]
        else:
            parent[key] = _interesting_json(rnd)
        nodes = list(_json_nodes(obj))
    return obj


def mutate_json(b: bytes, rnd: random.Random) -> bytes:
    try:
        return _mutate_json(b, rnd)
    except RecursionError:                   # an input already nested too deeply to re-encode
        return mutate_bytes(b, rnd, [])


def _mutate_json(b: bytes, rnd: random.Random) -> bytes:
    try:
        obj = json.loads(b)
    except (ValueError, RecursionError):
        return mutate_bytes(b, rnd, [])
    if not isinstance(obj, (dict, list)):
        return mutate_bytes(b, rnd, [])
    text = _dumps(mutate_json_obj(obj, rnd))
    if rnd.random() < 0.1:
        text = text.replace("}", ', "dup": 1, "dup": 2}', 1)
    return text.encode()


def mutate_safetensors(b: bytes, rnd: random.Random) -> bytes:
    try:
        return _mutate_safetensors(b, rnd)
    except RecursionError:
        return mutate_bytes(b, rnd, [])


def _mutate_safetensors(b: bytes, rnd: random.Random) -> bytes:
    if len(b) < 8:
        return mutate_bytes(b, rnd, [])
    (n,) = struct.unpack_from("<Q", b)
    try:
        header = json.loads(b[8:8 + n])
    except (ValueError, RecursionError):
        return mutate_bytes(b, rnd, [])
    data = b[8 + n:]
    if rnd.random() < 0.3:
        data = mutate_bytes(data, rnd, [])
    h = _dumps(mutate_json_obj(header, rnd)).encode()
    return struct.pack("<Q", len(h)) + h + data


def mutate_pickle(b: bytes, rnd: random.Random) -> bytes:
    try:
        ops = list(pickletools.genops(b))
    except Exception:
        return mutate_bytes(b, rnd, [])
    targets = [(op, arg, pos) for op, arg, pos in ops
               if op.name in ("BININT", "BININT1", "BININT2", "LONG1", "BINUNICODE", "SHORT_BINUNICODE")]
    if not targets:
        return mutate_bytes(b, rnd, [])
    out = bytearray(b)
    for op, arg, pos in sorted(rnd.sample(targets, min(len(targets), rnd.choice([1, 1, 2, 4]))),
                               key=lambda t: -t[2]):
        # The opcode's encoded length, to splice in a replacement of another length.
        nxt = [p for _, _, p in ops if p > pos]
        end = nxt[0] if nxt else len(b)
        if op.name in ("BINUNICODE", "SHORT_BINUNICODE"):
            s = rnd.choice(["", "embed.weight", "rnn.weight_ih_l0", "fc.bias", "0", "storage", "cpu",
                            "module.x", "x" * 1000, str(arg) + "_reverse"]).encode()
            rep = b"X" + struct.pack("<I", len(s)) + s
        else:
            v = rnd.choice(INTERESTING)
            enc = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
            rep = b"\x8a" + bytes([len(enc)]) + enc
        out[pos:end] = rep
    return bytes(out)


def mutate_zip(b: bytes, rnd: random.Random, others: list, pristine: bool) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(b)) as z:
            members = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    except Exception:
        return mutate_bytes(b, rnd, others)
    k = rnd.randrange(len(members))
    name, data = members[k]
    op = rnd.randrange(10)
    if op == 0:
        del members[k]
    elif op == 1:
        members.append((name, data))
    else:
        if name.endswith(".pkl"):
            data = mutate_pickle(data, rnd) if rnd.random() < 0.8 else mutate_bytes(data, rnd, others)
        elif name.endswith(".json"):
            data = mutate_json(data, rnd) if rnd.random() < 0.8 else mutate_bytes(data, rnd, others)
        elif name.endswith(".h5"):
            data = mutate_h5(data, rnd) if pristine and rnd.random() < 0.5 else mutate_bytes(data, rnd, others)
        else:
            data = mutate_bytes(data, rnd, others)
        members[k] = (name, data)
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if rnd.random() < 0.3 else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", method) as z:
        for n, d in members:
            z.writestr(n, d)
    return buf.getvalue()


def mutate_h5(b: bytes, rnd: random.Random) -> bytes:
    """Rewrites a valid HDF5 file (a fixture, never an already mutated file: the HDF5 library may crash on
    those) through h5py: one dataset reshaped, retyped, emptied or removed, or one attribute replaced."""
    try:
        return _mutate_h5(b, rnd)
    except Exception:
        return mutate_bytes(b, rnd, [])


def _mutate_h5(b: bytes, rnd: random.Random) -> bytes:
    import h5py
    import numpy as np
    fd, path = tempfile.mkstemp(suffix=".h5")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b)
        try:
            f = h5py.File(path, "r+")
        except Exception:
            return mutate_bytes(b, rnd, [])
        with f:
            items = []
            f.visititems(lambda n, o: items.append((n, o)))
            if not items:
                return mutate_bytes(b, rnd, [])
            name, obj = rnd.choice(items)
            op = rnd.randrange(6)
            if isinstance(obj, h5py.Dataset) and op < 4:
                arr = obj[()]
                del f[name]
                if op == 0:
                    shape = tuple(max(0, d + rnd.choice([-1, 1, 0])) for d in arr.shape) or ()
                    f.create_dataset(name, data=np.resize(arr, shape) if shape else arr)
                elif op == 1:
                    f.create_dataset(name, data=np.asarray(arr).astype(rnd.choice(["f8", "f2", "i4", "u1", "?"])))
                elif op == 2:
                    f.create_dataset(name, shape=(rnd.choice([1, 2**10, 2**19]),), dtype="f4")   # fill values
                # op == 3: removed
            elif op < 5:
                keys = list(obj.attrs.keys())
                if keys:
                    k = rnd.choice(keys)
                    v = obj.attrs[k]
                    if isinstance(v, (str, bytes)) and str(v)[:1] in "{[":
                        obj.attrs[k] = mutate_json(v.encode() if isinstance(v, str) else v, rnd).decode("utf-8", "replace")
                    else:
                        obj.attrs[k] = rnd.choice([np.int64(rnd.choice(INTERESTING[:30])), "x", np.array([b"a", b"b"]),
                                                   np.zeros(3)])
            else:
                del f[name]
        with open(path, "rb") as g:
            return g.read()
    finally:
        os.unlink(path)


def mutate(seed: Seed, rnd: random.Random, others: list) -> dict:
    """The files of one mutated input: one file of the seed mutated (sometimes two)."""
    files = dict(seed.files)
    for _ in range(1 if rnd.random() < 0.8 else 2):
        name = rnd.choice(list(files))
        b = files[name]
        pristine = b is seed.files[name]
        if name.endswith(".json"):
            b = mutate_json(b, rnd) if rnd.random() < 0.8 else mutate_bytes(b, rnd, others)
        elif seed.kind == "zip" and name == seed.src:
            b = mutate_zip(b, rnd, others, pristine) if rnd.random() < 0.8 else mutate_bytes(b, rnd, others)
        elif seed.kind == "safetensors":
            b = mutate_safetensors(b, rnd) if rnd.random() < 0.7 else mutate_bytes(b, rnd, others)
        elif seed.kind == "h5" and name == seed.src and pristine and rnd.random() < 0.5:
            b = mutate_h5(b, rnd)
        else:
            b = mutate_bytes(b, rnd, others)
        files[name] = b
    return files


class BytesRandom:
    """The few ``random.Random`` methods the mutators use, drawn from libFuzzer's input bytes (through
    atheris' FuzzedDataProvider), so that a change of input bytes changes particular choices."""

    def __init__(self, fdp):
        self.fdp = fdp

    def randrange(self, a: int, b: int = None) -> int:
        lo, hi = (0, a) if b is None else (a, b)
        if hi - lo <= 1:
            return lo
        return self.fdp.ConsumeIntInRange(lo, hi - 1)

    def choice(self, seq):
        return seq[self.randrange(len(seq))]

    def random(self) -> float:
        return self.fdp.ConsumeProbability()

    def sample(self, population, k: int) -> list:
        pool = list(population)
        return [pool.pop(self.randrange(len(pool))) for _ in range(min(k, len(pool)))]


# --- Running one input --------------------------------------------------------------------------------

class Fuzzer:
    def __init__(self, artifacts: str, timeout: float, open_model: bool):
        from recur import convert as rc
        from recur import format as rf
        self.rc, self.rf = rc, rf
        self.artifacts = artifacts
        self.timeout = timeout
        self.chars = os.path.join(FIXTURES, "chars.txt")
        self.work = tempfile.mkdtemp(prefix="fuzz-convert-")
        self.execs = self.converted = self.refused = 0
        self.failures: dict = {}
        self.messages: set = set()
        self.model = None
        if open_model:
            try:
                import recur
                recur.library_path()
                self.model = recur.Model
            except Exception:
                self.model = None

    def run(self, seed: Seed, files: dict) -> None:
        d = os.path.join(self.work, "case")
        shutil.rmtree(d, ignore_errors=True)
        os.mkdir(d)
        for n, b in files.items():
            with open(os.path.join(d, n), "wb") as f:
                f.write(b)
        kw = dict(seed.kw)
        if "config" in kw:
            kw["config"] = os.path.join(d, kw["config"])
        out = os.path.join(d, "out.recur")
        self.execs += 1
        problem = None
        signal.alarm(int(self.timeout))
        try:
            self.rc.convert(os.path.join(d, seed.src), out, chars=self.chars, **kw)
            signal.alarm(0)
            self.rf.read(out)
            if self.model is not None:
                self.model(out).close()
            self.converted += 1
        except self.rc.ConvertError as e:
            signal.alarm(0)
            msg = str(e)
            if not msg or "\n" in msg:
                problem = f"ConvertError message is not one line: {msg!r}"
            left = [f for f in os.listdir(d) if f.startswith("out.recur")]
            if left:
                problem = f"a failed conversion left {left}"
            self.refused += 1
            self.messages.add("".join("#" if c.isdigit() else c for c in msg)[:120])
        except Slow:
            problem = f"took more than {self.timeout} s"
        except BaseException as e:          # noqa: BLE001 - anything else is what we look for
            signal.alarm(0)
            if isinstance(e, KeyboardInterrupt):
                raise
            problem = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        finally:
            signal.alarm(0)
        if problem is not None:
            self.record(seed, files, problem)

    def record(self, seed: Seed, files: dict, problem: str) -> None:
        lines = problem.strip().splitlines()
        where = [ln.strip() for ln in lines if ln.strip().startswith("File ")]
        key = (lines[-1].split(":")[0] if lines else "?") + " @ " + (where[-1] if where else problem[:80])
        first = key not in self.failures
        self.failures.setdefault(key, 0)
        self.failures[key] += 1
        if not first:
            return
        n = len(self.failures)
        d = os.path.join(self.artifacts, f"failure-{n}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for name, b in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(b)
        with open(os.path.join(d, "case.json"), "w") as f:
            json.dump({"seed": seed.name, "src": seed.src, "options": seed.kw, "problem": problem}, f, indent=1)
        print(f"fuzz_convert: FAILURE {n} on {seed.name}: {lines[-1] if lines else problem} (saved in {d})",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


def _import_converters() -> None:
    import recur.convert  # noqa: F401
    import recur.convert.h5tree, recur.convert.keras, recur.convert.pytorch  # noqa: F401,E401
    import recur.convert.safetensors, recur.convert.tf_checkpoint, recur.convert.torch_state  # noqa: F401,E401
    import recur.format  # noqa: F401


def _on_alarm(signum, frame):
    raise Slow()


def _limit_memory(mb: int) -> None:
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            base = int(line.split()[1]) * 1024
            limit = base + (mb << 20)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            return


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Fuzz recur.convert with mutations of the committed fixtures.")
    p.add_argument("--seconds", type=float, default=60, help="how long to fuzz (default 60)")
    p.add_argument("--seed", type=int, default=1, help="seed of the mutation loop (default 1)")
    p.add_argument("--max-execs", type=int, default=0, help="stop after this many executions (0: no limit)")
    p.add_argument("--timeout", type=float, default=30, help="seconds one conversion may take (default 30)")
    p.add_argument("--memory-mb", type=int, default=1024,
                   help="address space allowed above the baseline, MiB (default 1024; 0: no limit)")
    p.add_argument("--artifacts", default=os.path.join(ROOT, ".build-fuzz", "convert-artifacts"),
                   help="where failing inputs are saved")
    p.add_argument("--no-open", action="store_true", help="do not open converted files with the runtime")
    p.add_argument("--atheris", action="store_true", help="let atheris (libFuzzer) drive the mutations")
    args, rest = p.parse_known_args(argv)
    warnings.filterwarnings("ignore")        # zipfile warns about the duplicate members it is asked to write

    import numpy  # noqa: F401  (imported before the memory limit, with everything the converters use)
    try:
        import h5py  # noqa: F401
    except ImportError:
        print("fuzz_convert: h5py is not installed; the Keras seeds will only exercise its absence", file=sys.stderr)
    seeds = load_seeds()
    others = [b for s in seeds for b in s.files.values()]
    if args.atheris:
        import atheris
        with atheris.instrument_imports(include=["recur"]):
            _import_converters()
    else:
        _import_converters()
    import recur.convert.h5tree
    fz = Fuzzer(args.artifacts, args.timeout, not args.no_open)
    # The HDF5 reader's own time limit (a child that hangs is killed) must act before this script's.
    recur.convert.h5tree.TIMEOUT = min(recur.convert.h5tree.TIMEOUT, max(1, int(args.timeout / 3)))
    signal.signal(signal.SIGALRM, _on_alarm)
    if args.memory_mb:
        _limit_memory(args.memory_mb)

    start = time.monotonic()

    def report() -> int:
        elapsed = time.monotonic() - start
        fz.close()
        total = sum(fz.failures.values())
        print(f"fuzz_convert: {fz.execs} executions in {elapsed:.0f} s ({fz.execs / max(elapsed, 1e-9):.0f}/s) over "
              f"{len(seeds)} fixtures, {'atheris' if args.atheris else f'seed {args.seed}'}: {fz.converted} "
              f"converted, {fz.refused} refused ({len(fz.messages)} distinct messages), {total} failures "
              f"({len(fz.failures)} distinct)", flush=True)
        for key, n in fz.failures.items():
            print(f"  {n} x {key}", flush=True)
        return 1 if fz.failures else 0

    if args.atheris:
        def one(data: bytes) -> None:
            rnd = BytesRandom(atheris.FuzzedDataProvider(data))
            seed = rnd.choice(seeds)
            before = len(fz.failures)
            fz.run(seed, mutate(seed, rnd, others))
            # libFuzzer never returns: this function ends the run, with the summary.
            if len(fz.failures) > before:
                report()
                os._exit(1)
            if time.monotonic() - start >= args.seconds or (args.max_execs and fz.execs >= args.max_execs):
                os._exit(report())

        os.makedirs(args.artifacts, exist_ok=True)
        atheris.Setup([sys.argv[0], "-rss_limit_mb=0", f"-artifact_prefix={args.artifacts}/", *rest], one)
        atheris.Fuzz()
        return 0
    rnd = random.Random(args.seed)
    for s in seeds:                      # the unmutated fixtures first: they must all convert
        fz.run(s, dict(s.files))
    while time.monotonic() - start < args.seconds and (not args.max_execs or fz.execs < args.max_execs):
        seed = rnd.choice(seeds)
        fz.run(seed, mutate(seed, rnd, others))
    return report()


if __name__ == "__main__":
    sys.exit(main())
