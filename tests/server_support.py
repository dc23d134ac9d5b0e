"""Helpers for the server tests: tiny notebooks, JSON calls through jp_fetch, polling."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

API = ("api", "research-agent")
Fetch = Callable[..., Awaitable[Any]]

TRAIN_SOURCE = 'lr = 0.1\nscore = base + lr\nprint(f"score={score}")'


def write_notebook(
    root: Path,
    name: str,
    cells: list[tuple[str, str]],
    cell_metadata: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """A notebook of code cells given as (id, source), written under the server root."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for cell_id, source in cells:
        cell = nbformat.v4.new_code_cell(source)
        cell["id"] = cell_id
        cell["metadata"] = (cell_metadata or {}).get(cell_id, {})
        nb.cells.append(cell)
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def training_notebook(root: Path, name: str = "exp.ipynb") -> Path:
    return write_notebook(root, name, [("setup", "base = 0.5"), ("train", TRAIN_SOURCE)])


@dataclass
class Reply:
    code: int
    body: Any
    text: str
    headers: Any


async def call(
    fetch: Fetch,
    method: str,
    *parts: str,
    body: Any = None,
    raw: str | bytes | None = None,
    **kwargs: Any,
) -> Reply:
    """One request under /api/research-agent/; never raises for HTTP errors."""
    if raw is None and method in ("POST", "PATCH", "PUT"):
        raw = json.dumps(body if body is not None else {})
    response = await fetch(*API, *parts, method=method, body=raw, raise_error=False, **kwargs)
    text = response.body.decode() if response.body else ""
    try:
        parsed = json.loads(text) if text else None
    except json.JSONDecodeError:
        parsed = None
    return Reply(response.code, parsed, text, response.headers)


async def poll(
    fetch: Fetch,
    parts: tuple[str, ...],
    until: Callable[[Any], bool],
    wait_s: float = 60.0,
    interval: float = 0.1,
) -> Any:
    """GET the resource until `until(body)` holds; fail with the last body on timeout."""
    deadline = time.monotonic() + wait_s
    last: Any = None
    while time.monotonic() < deadline:
        reply = await call(fetch, "GET", *parts)
        assert reply.code == 200, reply.text
        last = reply.body
        if until(last):
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting on {'/'.join(parts)}; last: {last}")


def ready(exp: dict[str, Any]) -> bool:
    return exp["status"] != "proposing"


def all_runs_ended(exp: dict[str, Any]) -> bool:
    runs = [*exp["runs"], *([exp["baseline"]] if exp["baseline"] else [])]
    terminal = {"succeeded", "failed", "timed_out", "cancelled", "interrupted"}
    return bool(runs) and all(run["status"] in terminal for run in runs)


async def create_exploration(fetch: Fetch, **fields: Any) -> dict[str, Any]:
    """POST an exploration and wait until its proposals are ready."""
    reply = await call(fetch, "POST", "explorations", body=fields)
    assert reply.code == 201, reply.text
    exp: dict[str, Any] = await poll(fetch, ("explorations", reply.body["id"]), ready)
    assert exp["status"] != "failed", exp["error"]
    return exp


async def approve(fetch: Fetch, proposal: dict[str, Any]) -> Reply:
    return await call(
        fetch,
        "POST",
        "proposals",
        proposal["id"],
        "approve",
        body={"code_sha256": proposal["code_sha256"]},
    )


async def add_and_approve(fetch: Fetch, exploration_id: str, code: str) -> dict[str, Any]:
    """Add the researcher's own code as a proposal and approve it."""
    added = await call(
        fetch, "POST", "explorations", exploration_id, "proposals", body={"code": code}
    )
    assert added.code == 201, added.text
    approved = await approve(fetch, added.body)
    assert approved.code == 200, approved.text
    body: dict[str, Any] = approved.body
    return body


def side_kernel_pids() -> set[int]:
    """Kernel processes started by this test process (side kernels, researcher kernels)."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and "ipykernel" in cmdline:
            found.add(int(entry.name))
    return found


@contextlib.asynccontextmanager
async def researcher_kernel(
    jp_fetch: Fetch, serverapp: Any, path: str
) -> AsyncIterator[tuple[str, Any]]:
    """The researcher's own kernel for ``path``, started through /api/sessions as JupyterLab
    does, with a ready client on it: yields (kernel id, client)."""
    body = {"path": path, "type": "notebook", "name": "", "kernel": {"name": "python3"}}
    session = await jp_fetch("api", "sessions", method="POST", body=json.dumps(body))
    kernel_id = json.loads(session.body)["kernel"]["id"]
    client = serverapp.kernel_manager.get_kernel(kernel_id).client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        yield kernel_id, client
    finally:
        client.stop_channels()


async def peek(client: Any, name: str) -> tuple[str, int]:
    """The repr of ``name`` in a kernel and the execution count after a no-op cell."""
    reply = await client.execute("pass", reply=True, timeout=30, user_expressions={"m": name})
    content = reply["content"]
    return content["user_expressions"]["m"]["data"]["text/plain"], content["execution_count"]
