"""Copy variables between kernels: dump chosen names to a file in one kernel, load them in another.

Both sides are code strings the engine sends to a kernel. They run inside a throwaway namespace
(``exec`` with its own globals), so the kernel's namespace gains no name, and they are sent
with ``silent=True, store_history=False``, so the execution count and history stay as they
were. The dump only reads: pickling calls ``__reduce__`` on the values and nothing else.

What cannot be copied is reported, never guessed: values that do not pickle (generators,
locks, open files, connections), and values whose type or code lives in the notebook itself
(functions, classes and their instances: a copy would bind to a private copy of the globals
and miss a later change of them). The caller rebuilds those by replaying their cells.

The file is created with mode 0600 in a private directory and deleted by its owner.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

RunCode = Callable[[str], Awaitable[bool]]  # run code silently; False when it failed or could not

_DUMP = r"""
def _dump(ns, names, path, manifest, with_rng):
    import json, os, pickle, sys, types
    try:
        import cloudpickle
        base, how = cloudpickle.Pickler, "cloudpickle"
    except Exception:
        base, how = pickle.Pickler, "pickle"

    class Local(Exception):
        pass

    class Pickler(base):
        def reducer_override(self, obj):
            if isinstance(obj, (types.FunctionType, type)) and (
                getattr(obj, "__module__", None) == "__main__"
            ):
                raise Local("defined in the notebook: " + getattr(obj, "__qualname__", "?"))
            parent = getattr(super(), "reducer_override", None)
            return parent(obj) if parent is not None else NotImplemented

    class Sink:
        def write(self, data):
            return len(data)

    def write(target, payload, binary):
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb" if binary else "w") as out:
            if binary:
                Pickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(payload)
            else:
                out.write(payload)

    report = {"saved": [], "failed": {}, "missing": [], "pickler": how, "rng": False}
    try:
        present = {n: ns[n] for n in names if n in ns}
        report["missing"] = [n for n in names if n not in ns]
        rng = {}
        if with_rng:
            import random
            rng["random"] = random.getstate()
            if "numpy" in sys.modules:
                rng["numpy"] = sys.modules["numpy"].random.get_state()
            if "torch" in sys.modules:
                rng["torch"] = sys.modules["torch"].get_rng_state()
        try:
            write(path, {"values": present, "rng": rng}, True)
        except Exception:
            # Find the values that do not copy; values stay together in one pickle so that
            # two names for one object are still one object after loading.
            for name in list(present):
                try:
                    Pickler(Sink(), protocol=pickle.HIGHEST_PROTOCOL).dump(present[name])
                except BaseException as exc:
                    report["failed"][name] = (type(exc).__name__ + ": " + str(exc))[:200]
                    del present[name]
            write(path, {"values": present, "rng": rng}, True)
        report["saved"] = sorted(present)
        report["rng"] = bool(rng)
        report["bytes"] = os.path.getsize(path)
    except BaseException as exc:
        report["error"] = (type(exc).__name__ + ": " + str(exc))[:300]
    write(manifest, json.dumps(report), False)


_dump(__jra_ns, __jra_names, __jra_path, __jra_manifest, __jra_rng)
"""

_LOAD = r"""
def _load(ns, path, imports, assign, statements):
    import pickle, sys
    for source in imports:
        exec(source, ns)
    with open(path, "rb") as f:
        data = pickle.load(f)
    values = data["values"]
    for name in assign:
        if name in values:
            ns[name] = values[name]
    rng = data.get("rng") or {}
    if "random" in rng:
        import random
        random.setstate(rng["random"])
    if "numpy" in rng:
        import numpy
        numpy.random.set_state(rng["numpy"])
    if "torch" in rng:
        import torch
        torch.set_rng_state(rng["torch"])
    for source in statements:
        exec(source, ns)


_load(__jra_ns, __jra_path, __jra_imports, __jra_assign, __jra_statements)
"""


def _wrapped(source: str, args: Mapping[str, object]) -> str:
    """One expression statement that runs ``source`` with ``args`` and binds nothing.

    The values are Python literals (repr of str/list/dict/bool), so the code carries no
    pickled data of its own.
    """
    namespace = "{'__jra_ns': globals(), " + ", ".join(
        f"{('__jra_' + k)!r}: {v!r}" for k, v in args.items()
    )
    return (
        "__import__('builtins').exec(__import__('builtins').compile("
        f"{source!r}, '<research-agent snapshot>', 'exec'), {namespace}}})\n"
    )


def dump_code(names: Iterable[str], path: Path, manifest: Path, with_rng: bool) -> str:
    """Code that pickles ``names`` to ``path`` and writes a JSON report to ``manifest``."""
    args = {
        "names": sorted(set(names)),
        "path": str(path),
        "manifest": str(manifest),
        "rng": with_rng,
    }
    return _wrapped(_DUMP, args)


def load_code(
    path: Path, assign: Iterable[str], imports: Iterable[str], statements: Iterable[str]
) -> str:
    """Code that runs the imports, loads the values named in ``assign`` from ``path``,
    restores the random generators, then runs the def/class ``statements``."""
    args = {
        "path": str(path),
        "imports": list(imports),
        "assign": sorted(set(assign)),
        "statements": list(statements),
    }
    return _wrapped(_LOAD, args)


@dataclass
class Snapshot:
    """A file of pickled values and what did not make it into it."""

    path: Path
    saved: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    rng: bool = False
    size: int = 0
    taken_s: float = 0.0
    taken_at: float = field(default_factory=time.monotonic)

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


async def take_snapshot(
    run: RunCode, names: Iterable[str], directory: Path, stem: str, with_rng: bool
) -> Snapshot | None:
    """Dump ``names`` from the kernel behind ``run``; None when nothing usable came back."""
    path = directory / f"{stem}.pkl"
    manifest = directory / f"{stem}.json"
    started = time.monotonic()
    try:
        if not await run(dump_code(names, path, manifest, with_rng)):
            path.unlink(missing_ok=True)
            return None
        report = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        path.unlink(missing_ok=True)
        return None
    finally:
        manifest.unlink(missing_ok=True)
    if not isinstance(report, dict) or report.get("error") or not path.is_file():
        path.unlink(missing_ok=True)
        return None
    return Snapshot(
        path=path,
        saved=[str(n) for n in report.get("saved", [])],
        failed={str(k): str(v) for k, v in dict(report.get("failed", {})).items()},
        missing=[str(n) for n in report.get("missing", [])],
        rng=bool(report.get("rng")),
        size=int(report.get("bytes", 0)),
        taken_s=time.monotonic() - started,
    )
