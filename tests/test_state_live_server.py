"""The server offers a notebook's own kernel as a source of state, only while it is idle."""

from __future__ import annotations

import asyncio
import pickle
import time
from pathlib import Path
from typing import Any

from jupyter_research_agent.core.snapshot import take_snapshot
from jupyter_research_agent.server.live import ServerLiveKernels


async def _wait_state(kernel: Any, state: str) -> None:
    deadline = time.monotonic() + 20
    while kernel.execution_state != state:
        assert time.monotonic() < deadline, f"kernel never became {state}"
        await asyncio.sleep(0.02)


async def test_an_open_notebook_s_idle_kernel_serves_snapshots(
    jp_serverapp: Any, tmp_path: Path
) -> None:
    # Given a notebook session whose kernel has run a setup cell
    model = await jp_serverapp.session_manager.create_session(
        path="work/nb.ipynb", kernel_name="python3", type="notebook"
    )
    kernel_id = model["kernel"]["id"]
    kernel = jp_serverapp.kernel_manager.get_kernel(kernel_id)
    client = kernel.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=30)
        client.execute("data = [1, 2, 3]")
        await asyncio.sleep(0.2)
        await _wait_state(kernel, "idle")
        live = ServerLiveKernels(jp_serverapp)

        # When the engine asks for the notebook's kernel and copies `data` from it
        source = await live("work/nb.ipynb")
        assert source is not None

        async def run(code: str) -> bool:
            assert source is not None
            return await source.run_silently(code, 30)

        snap = await take_snapshot(run, ["data"], tmp_path, "live", with_rng=False)

        # Then the copy holds the kernel's value
        assert snap is not None and snap.saved == ["data"]
        with snap.path.open("rb") as f:
            assert pickle.load(f)["values"] == {"data": [1, 2, 3]}
        assert snap.path.stat().st_mode & 0o777 == 0o600

        # And while the kernel is busy, it is not asked and the answer comes at once
        client.execute("import time\ntime.sleep(3)")
        await _wait_state(kernel, "busy")
        started = time.monotonic()
        assert not await source.run_silently("1", 30)
        assert time.monotonic() - started < 0.5

        # And a notebook without a session has no live kernel
        assert await live("other.ipynb") is None
    finally:
        client.stop_channels()
        await jp_serverapp.kernel_manager.shutdown_kernel(kernel_id, now=True)
