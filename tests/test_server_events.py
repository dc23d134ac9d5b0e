"""Live updates through the server's event bus, and a responsive API under load."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import pytest
from server_support import (
    Fetch,
    all_runs_ended,
    approve,
    call,
    create_exploration,
    poll,
    training_notebook,
    write_notebook,
)

from jupyter_research_agent.server.events import SCHEMA_ID

STREAMING_CELL = (
    "import time\n"
    "for i in range(6000):\n"
    "    print(f'step {i} ' + 'x' * 60, flush=True)\n"
    "    time.sleep(0.01)\n"
)


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    jp_server_config["ResearchAgent"].update(
        ledger_path=str(tmp_path / "ledger.sqlite"), pool_size=8, run_timeout=120.0
    )
    return jp_server_config


async def _next_event(ws: Any, timeout_s: float) -> dict[str, Any] | None:
    try:
        message = await asyncio.wait_for(ws.read_message(), timeout_s)
    except TimeoutError:
        return None
    return json.loads(message) if message is not None else None


async def test_run_state_changes_arrive_on_the_event_websocket(
    jp_fetch: Fetch, jp_ws_fetch: Any, jp_root_dir: Path
) -> None:
    # Given a browser subscribed to the server's events, and a proposal
    training_notebook(jp_root_dir)
    ws = await jp_ws_fetch("api", "events", "subscribe")
    try:
        exp = await create_exploration(jp_fetch, notebook_path="exp.ipynb", cell_id="train")
        proposal = exp["proposals"][0]

        # When the proposal is approved and runs
        await approve(jp_fetch, proposal)
        ours: list[dict[str, Any]] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            event = await _next_event(ws, deadline - time.monotonic())
            if event is None:
                break
            if event.get("schema_id") != SCHEMA_ID:
                continue
            ours.append(event)
            finished = {e["id"] for e in ours if e["type"] == "run" and e["status"] == "succeeded"}
            if len(finished) == 2:
                break  # the baseline and the variation both finished
    finally:
        ws.close()

    # Then the proposal's approval and each run's progress arrived as small events
    kinds = {(e["type"], e["status"]) for e in ours}
    assert ("proposal", "approved") in kinds, kinds
    run_statuses = {e["status"] for e in ours if e["type"] == "run"}
    assert {"running", "succeeded"} <= run_statuses, run_statuses
    for event in ours:
        assert event["exploration_id"] == exp["id"]
        assert event["notebook_path"] == "exp.ipynb"
        assert len(json.dumps(event)) < 16_000
    # And the REST resource agrees with what the events announced
    done = await poll(jp_fetch, ("explorations", exp["id"]), all_runs_ended, wait_s=30)
    succeeded = {e["id"] for e in ours if e["type"] == "run" and e["status"] == "succeeded"}
    assert succeeded == {r["id"] for r in [*done["runs"], done["baseline"]]}


@pytest.mark.slow
async def test_status_answers_fast_while_eight_runs_stream_output(
    jp_fetch: Fetch, jp_root_dir: Path
) -> None:
    # Given eight approved runs that print continuously, each in its own side kernel
    write_notebook(jp_root_dir, "stream.ipynb", [("loop", STREAMING_CELL)])
    exp = await create_exploration(
        jp_fetch, notebook_path="stream.ipynb", cell_id="loop", max_proposals=0
    )
    for n in range(7):  # seven variations plus the baseline: eight side kernels
        added = await call(
            jp_fetch,
            "POST",
            "explorations",
            exp["id"],
            "proposals",
            body={"code": STREAMING_CELL.replace("step", f"v{n} step")},
        )
        assert (await approve(jp_fetch, added.body)).code == 200

    def streaming(e: dict[str, Any]) -> bool:
        runs = [*e["runs"], *([e["baseline"]] if e["baseline"] else [])]
        return len(runs) == 8 and all(r["status"] == "running" and r["tail"] for r in runs)

    exp = await poll(jp_fetch, ("explorations", exp["id"]), streaming, wait_s=120, interval=0.5)

    # When the status is requested again and again while they stream
    latencies: list[float] = []
    busy: list[int] = []
    deadline = time.monotonic() + 4.0
    while time.monotonic() < deadline:
        started = time.perf_counter()
        reply = await call(jp_fetch, "GET", "status")
        latencies.append((time.perf_counter() - started) * 1000)
        busy.append(reply.body["pool"]["busy"])
        await asyncio.sleep(0.02)
    still = await call(jp_fetch, "GET", "explorations", exp["id"])

    # Then every answer came fast while all eight kernels were busy
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    print(
        f"status latency under 8 streaming runs: n={len(latencies)} p50={p50:.1f}ms "
        f"p95={p95:.1f}ms max={latencies[-1]:.1f}ms"
    )
    assert min(busy) == 8
    assert streaming(still.body)
    assert p95 < 100, latencies

    # (clean up: cancelling every run over the API ends them all)
    run_ids = [r["id"] for r in [*still.body["runs"], still.body["baseline"]]]
    for run_id in run_ids:
        assert (await call(jp_fetch, "POST", "runs", run_id, "cancel")).code == 200
    done = await poll(jp_fetch, ("explorations", exp["id"]), all_runs_ended, wait_s=60)
    assert {r["status"] for r in done["runs"]} == {"cancelled"}
