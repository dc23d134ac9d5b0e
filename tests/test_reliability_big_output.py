"""A notebook with a 50 MB cell output: a bounded prompt, bounded server memory and ledger.

RELIABILITY.md, Volume: "A 50 MB cell output: truncated in the prompt (head and tail with a
marker), server memory bounded."
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from agent_wiring_support import model_server_options
from openai_server import FakeOpenAI, chat, fake_openai, proposals_answer
from server_support import Fetch, call, create_exploration

from jupyter_research_agent.server.handlers import EXTENSION_SETTINGS_KEY

LINE = "progress line\n"
BIG_TEXT = "first line\n" + LINE * (50_000_000 // len(LINE)) + "loss: 0.25\n"
EXPLORATIONS = 3

__all__ = ["fake_openai"]


@pytest.fixture
def jp_server_config(
    jp_server_config: dict[str, Any], tmp_path: Path, fake_openai: FakeOpenAI
) -> dict[str, Any]:
    jp_server_config["ResearchAgent"].update(model_server_options(tmp_path, fake_openai.url))
    return jp_server_config


def big_notebook(root: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    train = nbformat.v4.new_code_cell("lr = 0.1\nprint(f'loss: {lr}')", id="train")
    train.outputs = [nbformat.v4.new_output("stream", name="stdout", text=BIG_TEXT)]
    nb.cells = [train]
    nbformat.write(nb, str(root / "big.ipynb"))


@pytest.mark.slow
async def test_a_50_mb_output_is_clipped_in_the_prompt_and_not_kept_whole(
    jp_fetch: Fetch, jp_serverapp: Any, jp_root_dir: Path, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    # Given a saved notebook whose target cell printed 50 MB, and a model
    big_notebook(jp_root_dir)
    fake_openai.always(chat(proposals_answer("lr = 0.05\nprint(f'loss: {lr}')")))

    # When a few explorations of that cell are created, one after the other, while the status
    # is asked for again and again
    latencies: list[float] = []
    creating = True

    async def ask_status() -> None:
        while creating:
            asked = time.perf_counter()
            assert (await call(jp_fetch, "GET", "status")).code == 200
            latencies.append(time.perf_counter() - asked)
            await asyncio.sleep(0.02)

    asking = asyncio.create_task(ask_status())
    started = time.monotonic()
    try:
        for _ in range(EXPLORATIONS):
            exp = await create_exploration(
                jp_fetch, notebook_path="big.ipynb", cell_id="train", max_proposals=1
            )
            assert len(exp["proposals"]) == 1
    finally:
        creating = False
        await asking
    elapsed = time.monotonic() - started
    kept = jp_serverapp.web_app.settings[EXTENSION_SETTINGS_KEY].engine._store._notebooks
    kept_mb = sum(len(nb.model_dump_json()) for nb in kept.values()) / 2**20
    ledger_mb = (tmp_path / "ledger.sqlite").stat().st_size / 2**20
    print(
        f"{EXPLORATIONS} explorations in {elapsed:.1f}s; "
        f"notebooks kept {kept_mb:.1f} MB; ledger {ledger_mb:.1f} MB"
    )

    # Then each prompt is small and holds the output's head and tail around a marker
    assert len(fake_openai.chat_requests) == EXPLORATIONS
    for request in fake_openai.chat_requests:
        assert len(request.raw) < 100_000
        assert "first line" in request.raw
        assert "loss: 0.25" in request.raw
        assert "omitted" in request.raw
    # And the server does not keep (or record) the 50 MB once per exploration
    assert ledger_mb < 20, ledger_mb
    assert len(kept) == EXPLORATIONS
    assert kept_mb < 5, kept_mb
    # And the server kept answering while it read the notebook (parsed off the event loop;
    # one synchronous read of this file blocks it for well over a second)
    print(f"status latency max {max(latencies):.2f}s over {len(latencies)} requests")
    assert max(latencies) < 1.0, latencies
