"""Find, from inside a kernel, the Jupyter server that started it and the notebook it serves.

Sources, in order:

1. Servers: ``RESEARCH_AGENT_SERVER_URL`` (+ ``RESEARCH_AGENT_TOKEN``) if set, else the running
   servers' ``jpserver-*.json`` files in ``jupyter_runtime_dir()`` whose pid is alive.
2. Notebook: ``RESEARCH_AGENT_NOTEBOOK_PATH`` (an API path) if set; else the server session whose
   kernel is this kernel (right even after a rename); else ``JPY_SESSION_NAME``, which
   jupyter_server sets for session kernels (an absolute path when the frontend sends a name, as
   JupyterLab does, else the API path), made relative to the root_dir of the server holding it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .client import ClientError, ResearchClient

SERVER_URL_ENV = "RESEARCH_AGENT_SERVER_URL"
TOKEN_ENV = "RESEARCH_AGENT_TOKEN"
NOTEBOOK_ENV = "RESEARCH_AGENT_NOTEBOOK_PATH"
SESSION_ENV = "JPY_SESSION_NAME"


class NotFoundError(Exception):
    """No server or no notebook for this kernel; ``str(err)`` says what was tried."""


@dataclass(frozen=True)
class ServerInfo:
    url: str
    token: str = ""
    root_dir: str | None = None
    pid: int | None = None


@dataclass(frozen=True)
class Target:
    server: ServerInfo
    notebook_path: str  # relative to the server's root_dir, "/"-separated


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def running_servers(runtime_dir: str | Path) -> list[ServerInfo]:
    """Servers whose runtime file is readable and whose process is alive."""
    servers = []
    folder = Path(runtime_dir)
    if not folder.is_dir():
        return []
    for path in sorted(folder.iterdir()):
        if not re.fullmatch(r"jpserver-.+\.json", path.name):
            continue
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
            server = ServerInfo(
                url=str(info["url"]),
                token=str(info.get("token") or ""),
                root_dir=str(info["root_dir"]),
                pid=int(info["pid"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue  # half-written or foreign file
        if server.pid is not None and pid_alive(server.pid):
            servers.append(server)
    return servers


def kernel_id_from_connection_file(connection_file: str) -> str | None:
    match = re.fullmatch(r"kernel-(.+)\.json", Path(connection_file).name)
    return match.group(1) if match else None


def candidate_servers(env: Mapping[str, str], runtime_dir: str | Path) -> list[ServerInfo]:
    url = env.get(SERVER_URL_ENV, "").strip()
    if url:
        url = url if url.endswith("/") else url + "/"
        return [ServerInfo(url=url, token=env.get(TOKEN_ENV, ""))]
    return running_servers(runtime_dir)


def locate(
    env: Mapping[str, str],
    runtime_dir: str | Path,
    kernel_id: str | None,
    *,
    connect_timeout: float = 3.0,
) -> Target:
    servers = candidate_servers(env, runtime_dir)
    if not servers:
        raise NotFoundError(f"no running server in {runtime_dir} and {SERVER_URL_ENV} is unset")
    explicit = env.get(NOTEBOOK_ENV, "").strip()
    if explicit:
        return Target(servers[0], explicit.lstrip("/"))
    if kernel_id:
        for server in servers:
            path = _session_path(server, kernel_id, connect_timeout)
            if path is not None:
                return Target(server, path)
    session_name = env.get(SESSION_ENV, "").strip()
    if session_name:
        target = _from_session_name(servers, session_name)
        if target is not None:
            return target
        raise NotFoundError(
            f"{SESSION_ENV}={session_name} is under no server root; set {NOTEBOOK_ENV}"
        )
    raise NotFoundError(
        f"no server session uses kernel {kernel_id or '?'} and {SESSION_ENV} is unset"
    )


def _session_path(server: ServerInfo, kernel_id: str, connect_timeout: float) -> str | None:
    client = ResearchClient(server.url, server.token, connect_timeout=connect_timeout)
    try:
        sessions = client.sessions()
    except ClientError:
        return None
    for session in sessions:
        kernel = session.get("kernel") or {}
        if kernel.get("id") == kernel_id and session.get("path"):
            return str(session["path"]).lstrip("/")
    return None


def _from_session_name(servers: list[ServerInfo], session_name: str) -> Target | None:
    if not os.path.isabs(session_name):
        # Already an API path: prefer the server where that file exists.
        for server in servers:
            if server.root_dir and Path(server.root_dir, session_name).exists():
                return Target(server, session_name)
        return Target(servers[0], session_name)
    notebook = os.path.realpath(session_name)
    best: Target | None = None
    for server in servers:
        if not server.root_dir:
            continue
        root = os.path.realpath(server.root_dir)
        if os.path.commonpath([root, notebook]) != root:
            continue  # "/a/b" must not claim "/a/bc/x.ipynb": commonpath compares whole parts
        relative = PurePosixPath(*Path(os.path.relpath(notebook, root)).parts).as_posix()
        # The deepest root wins when servers are nested.
        if best is None or len(root) > len(os.path.realpath(best.server.root_dir or "")):
            best = Target(server, relative)
    return best
