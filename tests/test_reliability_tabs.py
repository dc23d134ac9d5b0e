"""Many tabs asking at once: bounded requests to the model, each answer in its own notebook.

RELIABILITY.md, Volume: "Many concurrent requests from several tabs: bounded concurrency toward
the provider, each result routed to its own notebook."
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from agent_wiring_support import model_server_options
from openai_server import FakeOpenAI, Reply, chat, fake_openai, proposals_answer
from server_support import API, Fetch, call, poll, ready, write_notebook

CONCURRENCY = 2
DELAY_S = 0.4
NOTEBOOKS = ("alpha", "beta", "gamma")
REQUESTS = 10

__all__ = ["fake_openai"]


@pytest.fixture
def jp_server_config(
    jp_server_config: dict[str, Any], tmp_path: Path, fake_openai: FakeOpenAI
) -> dict[str, Any]:
    jp_server_config["ResearchAgent"].update(
        model_server_options(tmp_path, fake_openai.url, model_concurrency=CONCURRENCY)
    )
    return jp_server_config


class Arrivals:
    """Answers each request with code naming the notebook its prompt came from, after a delay.

    The fake holds every reply for exactly DELAY_S, and a client sends its next request only
    after an answer frees a slot, so request i is in flight during [arrival, arrival + DELAY_S].
    """

    def __init__(self) -> None:
        self.times: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.times.append(time.monotonic())
        tags = set(re.findall(r"NOTEBOOK_TAG_(\w+)", str(body.get("messages"))))
        assert len(tags) == 1, tags
        (tag,) = tags
        code = f"notebook_tag = 'NOTEBOOK_TAG_{tag}'\nlr = 0.05\nprint(f'score={{lr}}')"
        reply = chat(proposals_answer(code))
        reply.delay_s = DELAY_S
        return reply

    def max_in_flight(self) -> int:
        # A small margin: an answer leaves the fake a moment after its delay ends.
        edges = sorted(
            [(t, 1) for t in self.times] + [(t + DELAY_S - 0.02, -1) for t in self.times],
            key=lambda edge: (edge[0], edge[1]),
        )
        level = peak = 0
        for _, step in edges:
            level += step
            peak = max(peak, level)
        return peak


async def test_ten_tabs_at_once_stay_within_the_model_concurrency(
    jp_fetch: Fetch, jp_root_dir: Path, fake_openai: FakeOpenAI
) -> None:
    # Given three notebooks, each cell tagged with its notebook's name, and a slow model
    for name in NOTEBOOKS:
        source = f"notebook_tag = 'NOTEBOOK_TAG_{name}'\nlr = 0.1\nprint(f'score={{lr}}')"
        write_notebook(jp_root_dir, f"{name}.ipynb", [("train", source)])
    arrivals = Arrivals()
    fake_openai.always(arrivals)

    # When ten explorations are requested at the same moment, spread over the notebooks
    paths = [f"{NOTEBOOKS[i % len(NOTEBOOKS)]}.ipynb" for i in range(REQUESTS)]
    replies = await asyncio.gather(
        *(
            call(
                jp_fetch,
                "POST",
                "explorations",
                body={"notebook_path": path, "cell_id": "train", "max_proposals": 1},
            )
            for path in paths
        )
    )
    assert [r.code for r in replies] == [201] * REQUESTS, [r.text for r in replies]
    done = [await poll(jp_fetch, ("explorations", r.body["id"]), ready, wait_s=60) for r in replies]

    # Then every exploration got its proposal from the model
    assert len(fake_openai.chat_requests) == REQUESTS
    for exp in done:
        assert exp["status"] != "failed", exp["error"]
        assert len(exp["proposals"]) == 1
    # And no more than the configured number of requests were ever in flight, yet they overlapped
    assert arrivals.max_in_flight() == CONCURRENCY, arrivals.times
    # And each answer landed in the exploration of the notebook its prompt came from
    for path, exp in zip(paths, done, strict=True):
        assert exp["notebook_path"] == path
        tag = path.removesuffix(".ipynb")
        assert f"NOTEBOOK_TAG_{tag}'" in exp["proposals"][0]["code"], exp["proposals"][0]["code"]
    # And each notebook lists its own explorations only
    for name in NOTEBOOKS:
        path = f"{name}.ipynb"
        mine = await jp_fetch(*API, "explorations", params={"notebook_path": path})
        ids = {e["id"] for e in json.loads(mine.body)["explorations"]}
        assert ids == {e["id"] for e in done if e["notebook_path"] == path}
