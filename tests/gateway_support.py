"""A real Jupyter Kernel Gateway on 127.0.0.1 for the gateway tests, and ways to ask it things."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKEN = "gateway-test-token"
STARTED = re.compile(r"Kernel started: ([0-9a-f-]{36})")
SHUTDOWN = re.compile(r"Kernel shutdown: ([0-9a-f-]{36})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Gateway:
    url: str
    token: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def kernels(self) -> list[dict[str, Any]]:
        """GET /api/kernels: the kernels running on the gateway now.

        Kernel Gateway answers 500 while a kernel is half-started (it has no last activity
        yet), so that answer is asked again.
        """
        request = urllib.request.Request(
            f"{self.url}/api/kernels", headers={"Authorization": f"token {self.token}"}
        )
        for _ in range(50):
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    found: list[dict[str, Any]] = json.loads(response.read())
                    return found
            except urllib.error.HTTPError as exc:
                if exc.code != 500:
                    raise
            time.sleep(0.02)
        raise AssertionError("the gateway kept failing to list its kernels")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def started_ids(self) -> list[str]:
        return STARTED.findall(self.log())

    def shutdown_ids(self) -> list[str]:
        return SHUTDOWN.findall(self.log())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _answers(url: str, token: str) -> bool:
    request = urllib.request.Request(
        f"{url}/api/kernels", headers={"Authorization": f"token {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def slow_kernelspec(jupyter_path: Path, name: str, delay_s: float) -> None:
    """A kernelspec whose kernel starts ``delay_s`` late, like a pod waiting for its node."""
    spec_dir = jupyter_path / "kernels" / name
    spec_dir.mkdir(parents=True)
    launch = f"import time, runpy, sys; time.sleep({delay_s}); sys.argv = sys.argv[1:]; "
    launch += "runpy.run_module('ipykernel_launcher', run_name='__main__')"
    spec = {
        "argv": [sys.executable, "-c", launch, "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python (starts {delay_s:g} s late)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))


@contextmanager
def kernel_gateway(
    log_dir: Path, token: str = TOKEN, jupyter_path: Path | None = None
) -> Iterator[Gateway]:
    """`jupyter kernelgateway` on a free loopback port with a token; stopped on exit.

    ``jupyter_path`` adds a directory of kernelspecs the gateway offers.
    """
    port = free_port()
    log_path = log_dir / f"gateway-{port}.log"
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "kernelgateway",
        "--KernelGatewayApp.ip=127.0.0.1",
        f"--KernelGatewayApp.port={port}",
        f"--KernelGatewayApp.auth_token={token}",
        "--JupyterWebsocketPersonality.list_kernels=True",
    ]
    env = dict(os.environ)
    if jupyter_path is not None:
        env["JUPYTER_PATH"] = os.pathsep.join(
            filter(None, [str(jupyter_path), env.get("JUPYTER_PATH")])
        )
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    gateway = Gateway(f"http://127.0.0.1:{port}", token, log_path, process)
    try:
        deadline = time.monotonic() + 30
        while not _answers(gateway.url, token):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the kernel gateway did not come up:\n{gateway.log()}")
            time.sleep(0.1)
        yield gateway
    finally:
        gateway.stop()
