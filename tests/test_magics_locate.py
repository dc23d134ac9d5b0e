"""Finding the server and the notebook from a kernel's environment and runtime files.

The session lookup through a live server is covered end to end in test_magics_e2e.py; here the
servers' addresses answer nothing, so the environment decides.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from jupyter_research_agent.magics.locate import (
    NotFoundError,
    ServerInfo,
    kernel_id_from_connection_file,
    locate,
    running_servers,
)
from jupyter_research_agent.magics.magic import ResearchMagics
from tests.magics_http import closed_port_url


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_runtime(runtime: Path, name: str, root: Path, pid: int, url: str | None = None) -> None:
    info = {
        "url": url or closed_port_url(),
        "token": f"tok-{name}",
        "root_dir": str(root),
        "pid": pid,
    }
    (runtime / f"jpserver-{name}.json").write_text(json.dumps(info))


@pytest.fixture
def runtime(tmp_path: Path) -> Path:
    folder = tmp_path / "runtime"
    folder.mkdir()
    return folder


def test_only_live_servers_with_readable_files_count(runtime: Path, tmp_path: Path) -> None:
    # Given a live server, a dead one, a half-written file and an unrelated file
    write_runtime(runtime, "1", tmp_path, os.getpid())
    write_runtime(runtime, "2", tmp_path, dead_pid())
    (runtime / "jpserver-3.json").write_text('{"url": "http://')
    (runtime / "kernel-abc.json").write_text("{}")
    # When the runtime folder is read / Then only the live server is a candidate
    servers = running_servers(runtime)
    assert [s.token for s in servers] == ["tok-1"]
    assert running_servers(runtime / "missing") == []


@pytest.mark.parametrize(
    ("session_name", "expected_root", "expected_path"),
    [
        ("{a}/nb.ipynb", "a", "nb.ipynb"),
        ("{a}/sub/deep/nb.ipynb", "a", "sub/deep/nb.ipynb"),
        ("{a}/inner/x.ipynb", "a/inner", "x.ipynb"),  # the deepest root wins
        ("{a}c/x.ipynb", "ac", "x.ipynb"),  # "/a" does not claim "/ac/..."
    ],
)
def test_absolute_session_name_maps_to_the_server_root_holding_it(
    runtime: Path, tmp_path: Path, session_name: str, expected_root: str, expected_path: str
) -> None:
    # Given servers rooted at a, a/inner and ac (a sibling sharing a's prefix)
    for name, root in [("a", "a"), ("inner", "a/inner"), ("ac", "ac")]:
        (tmp_path / root).mkdir(parents=True, exist_ok=True)
        write_runtime(runtime, name, tmp_path / root, os.getpid())
    env = {"JPY_SESSION_NAME": session_name.format(a=tmp_path / "a")}
    # When the kernel locates its notebook
    target = locate(env, runtime, kernel_id="k-1", connect_timeout=0.5)
    # Then the path is relative to the right server's root
    assert target.server.root_dir == str(tmp_path / expected_root)
    assert target.notebook_path == expected_path


def test_relative_session_name_is_an_api_path_on_the_server_that_has_it(
    runtime: Path, tmp_path: Path
) -> None:
    # Given two servers, only the second holds work/nb.ipynb
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        write_runtime(runtime, name, tmp_path / name, os.getpid())
    (tmp_path / "two" / "work").mkdir()
    (tmp_path / "two" / "work" / "nb.ipynb").write_text("{}")
    # When JPY_SESSION_NAME is the API path / Then that server is chosen, the path kept
    target = locate({"JPY_SESSION_NAME": "work/nb.ipynb"}, runtime, None)
    assert (target.server.token, target.notebook_path) == ("tok-two", "work/nb.ipynb")


def test_overrides_win(runtime: Path, tmp_path: Path) -> None:
    # Given a running server and the override variables
    write_runtime(runtime, "1", tmp_path, os.getpid())
    env = {
        "RESEARCH_AGENT_SERVER_URL": "http://127.0.0.1:9/base",
        "RESEARCH_AGENT_TOKEN": "secret",
        "RESEARCH_AGENT_NOTEBOOK_PATH": "/a/b.ipynb",
        "JPY_SESSION_NAME": str(tmp_path / "other.ipynb"),
    }
    # When locating / Then the overrides decide (URL normalised, path relative)
    target = locate(env, runtime, "k-1")
    assert target.server == ServerInfo(url="http://127.0.0.1:9/base/", token="secret")
    assert target.notebook_path == "a/b.ipynb"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no running server in"),
        ({"JPY_SESSION_NAME": "/elsewhere/nb.ipynb"}, "is under no server root"),
        ({"RESEARCH_AGENT_SERVER_URL": "http://127.0.0.1:9/"}, "no server session uses kernel"),
    ],
)
def test_nothing_found_says_what_was_tried(
    runtime: Path, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    # Given a server (unless none is written) that has no session for this kernel
    if env:
        write_runtime(runtime, "1", tmp_path, os.getpid())
    # When locating / Then the error says what was missing
    with pytest.raises(NotFoundError, match=message):
        locate(env, runtime, "k-1", connect_timeout=0.5)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("/run/jupyter/kernel-1f2e-33.json", "1f2e-33"),
        ("kernel-abc.json", "abc"),
        ("/tmp/tmpa1b2.json", None),
    ],
)
def test_kernel_id_comes_from_the_connection_file_name(name: str, expected: str | None) -> None:
    assert kernel_id_from_connection_file(name) == expected


def test_magics_do_nothing_in_a_side_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a side kernel (the engine marks it) that replays a notebook using the magics
    monkeypatch.setenv("RESEARCH_AGENT_SIDE_RUN", "1")
    shell = InteractiveShell.instance()
    shell.register_magics(ResearchMagics(shell))  # type: ignore[no-untyped-call]
    # When a magic cell runs there / Then it says so in one line and starts nothing
    assert shell.run_line_magic("research", "propose --offline") is None
    assert capsys.readouterr().err == "research-agent: magics do nothing in a side run\n"
