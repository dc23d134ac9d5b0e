"""The magics' HTTP client: timeouts, errors, interruptible waiting, one-line failures."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from jupyter_research_agent.core.models import Exploration, ExplorationStatus
from jupyter_research_agent.magics.client import (
    ApiError,
    ResearchClient,
    ServerUnreachable,
    WaitTimeout,
    wait_for,
)
from jupyter_research_agent.magics.commands import ResearchSession
from jupyter_research_agent.magics.magic import ResearchMagics
from tests.magics_http import closed_port_url, json_server, silent_server


def test_wait_returns_the_first_value_that_is_done() -> None:
    # Given values that become done on the third fetch
    values = iter([1, 2, 3, 4])
    naps: list[float] = []
    # When waiting / Then the third value is returned after two naps of the interval
    assert wait_for(lambda: next(values), lambda v: v >= 3, timeout=10, sleep=naps.append) == 3
    assert naps == [0.5, 0.5]


def test_wait_stops_at_its_deadline() -> None:
    # Given a value that never becomes done and a clock that advances one second per nap
    now = [0.0]

    def nap(seconds: float) -> None:
        now[0] += seconds

    # When waiting 2 s with a 1 s interval / Then WaitTimeout after the deadline, not later
    with pytest.raises(WaitTimeout, match="after 2 s"):
        wait_for(lambda: 0, lambda v: False, timeout=2, interval=1, sleep=nap, clock=lambda: now[0])
    assert now[0] == 2


def test_keyboard_interrupt_during_the_nap_propagates() -> None:
    # Given a nap interrupted by the kernel (KeyboardInterrupt)
    calls: list[int] = []

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    # When waiting / Then the interrupt propagates after one fetch, without another request
    with pytest.raises(KeyboardInterrupt):
        wait_for(lambda: calls.append(1), lambda v: False, timeout=60, sleep=interrupted)
    assert calls == [1]


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def interrupt_soon(delay: float) -> threading.Timer:
    timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


@pytest.mark.usefixtures("sigint_raises")
def test_real_sigint_stops_a_long_wait_at_once() -> None:
    # Given a wait of up to 60 s with real sleeps
    started = time.monotonic()
    timer = interrupt_soon(0.3)
    # When the process gets SIGINT (what a kernel interrupt sends)
    with pytest.raises(KeyboardInterrupt):
        wait_for(lambda: None, lambda v: False, timeout=60, interval=0.2)
    timer.join()
    # Then waiting stopped within a moment of the signal
    assert time.monotonic() - started < 2


def test_unreachable_server_is_one_clear_error() -> None:
    # Given no server at the address / When a request is made
    client = ResearchClient(closed_port_url(), "t")
    with pytest.raises(ServerUnreachable) as caught:
        client.status()
    # Then the error names the address, on one line
    assert "cannot reach http://127.0.0.1:" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_hung_server_times_out_on_read() -> None:
    # Given a server that accepts and never answers, and a 0.3 s read timeout
    with silent_server() as url:
        client = ResearchClient(url, read_timeout=0.3)
        started = time.monotonic()
        # When a request is made / Then it fails after about the read timeout
        with pytest.raises(ServerUnreachable, match=r"did not answer within 0.3 s"):
            client.status()
    assert time.monotonic() - started < 3


def test_api_errors_carry_the_servers_message_and_the_token_is_sent() -> None:
    # Given a server answering 409 with the contract's error body
    conflict = (409, {"message": "The code changed since\n you looked.", "reason": "stale"})
    with json_server({("POST", "/base/api/research-agent/proposals/p-1/approve"): conflict}) as (
        url,
        seen,
    ):
        client = ResearchClient(url + "base/", "secret-token")
        # When approving / Then ApiError keeps status, one-line message and reason
        with pytest.raises(ApiError) as caught:
            client.approve("p-1", "0" * 64)
    assert (caught.value.status, caught.value.reason) == (409, "stale")
    assert str(caught.value) == "The code changed since you looked."
    assert seen[0][2]["Authorization"] == "token secret-token"


def test_missing_extension_gives_a_hint() -> None:
    # Given a server without the research-agent routes (404 without a JSON message)
    # When the status is requested / Then the hint names the server extension
    with json_server({}) as (url, _), pytest.raises(ApiError, match="server extension enabled"):
        ResearchClient(url).status()


# ---------------------------------------------------------------- the magic's one-line failures


def magic_shell(env: dict[str, str], runtime_dir: Path) -> InteractiveShell:
    shell = InteractiveShell.instance()
    session = ResearchSession(
        env=env,
        runtime_dir=runtime_dir,
        kernel_id="k-1",
        magic_cell_id=lambda: None,
        display=lambda obj: None,
        poll_interval=0.1,
    )
    shell.register_magics(ResearchMagics(shell, session))  # type: ignore[no-untyped-call]
    return shell


def test_no_server_for_this_kernel_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a kernel with no runtime files and no override
    shell = magic_shell({}, tmp_path)
    # When a subcommand needs the server
    result = shell.run_line_magic("research", "list")
    # Then one line says so, and nothing is returned
    err = capsys.readouterr().err
    assert result is None
    assert err.startswith("research-agent: no Jupyter server found for this kernel (")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_unreachable_server_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given an override pointing where nothing listens
    env = {
        "RESEARCH_AGENT_SERVER_URL": closed_port_url(),
        "RESEARCH_AGENT_NOTEBOOK_PATH": "a.ipynb",
    }
    shell = magic_shell(env, tmp_path)
    # When a subcommand needs the server / Then one line, no traceback
    shell.run_line_magic("research", "status exp-1")
    err = capsys.readouterr().err
    assert err.startswith("research-agent: no Jupyter server reachable for this kernel (cannot")
    assert err.count("\n") == 1


def test_parse_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given the magic / When a bad line is given / Then one line on stderr, no request made
    magic_shell({}, tmp_path).run_line_magic("research", "propose --seeds x")
    err = capsys.readouterr().err
    assert err == "research-agent: %research propose: argument --seeds: invalid int value: 'x'\n"


def test_no_arguments_prints_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given the magic / When called without arguments / Then the usage is printed
    magic_shell({}, tmp_path).run_line_magic("research", "")
    assert capsys.readouterr().out.startswith("usage: %research")


def running_exploration() -> dict[str, Any]:
    exploration = Exploration(
        id="exp-1", notebook_path="a.ipynb", cell_id="c", status=ExplorationStatus.RUNNING
    )
    return exploration.model_dump(mode="json")


@pytest.mark.usefixtures("sigint_raises")
def test_interrupting_results_stops_waiting_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an exploration whose runs go on and on
    routes = {("GET", "/api/research-agent/explorations/exp-1"): (200, running_exploration())}
    with json_server(routes) as (url, seen):
        env = {"RESEARCH_AGENT_SERVER_URL": url, "RESEARCH_AGENT_NOTEBOOK_PATH": "a.ipynb"}
        shell = magic_shell(env, tmp_path)
        started = time.monotonic()
        timer = interrupt_soon(0.5)
        # When `%research results` waits and the kernel is interrupted
        result = shell.run_line_magic("research", "results exp-1 --timeout 60")
        timer.join()
    # Then waiting stops at once with one line naming the exploration, and nothing is returned
    assert time.monotonic() - started < 3
    assert result is None
    err = capsys.readouterr().err
    assert err.startswith("research-agent: interrupted: stopped waiting")
    assert "%research status exp-1" in err
    assert err.count("\n") == 1
    assert len(seen) >= 2  # it was polling


def test_results_wait_has_a_deadline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given an exploration that stays running
    routes = {("GET", "/api/research-agent/explorations/exp-1"): (200, running_exploration())}
    with json_server(routes) as (url, _):
        env = {"RESEARCH_AGENT_SERVER_URL": url, "RESEARCH_AGENT_NOTEBOOK_PATH": "a.ipynb"}
        # When results waits at most 0.3 s
        result = magic_shell(env, tmp_path).run_line_magic(
            "research", "results --timeout 0.3 exp-1"
        )
    # Then it gives up with one line and the server carries on
    assert result is None
    err = capsys.readouterr().err
    assert err.startswith("research-agent: still not done after 0.3 s; the server carries on (")
    assert "`%research status exp-1`" in err
