"""Gateway settings from the headless command's flags and the server's traits, and what is sent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from gateway_support import Gateway, kernel_gateway
from pydantic import SecretStr
from traitlets.config import Config

from jupyter_research_agent.cli import build_parser, config_from_args
from jupyter_research_agent.core.config import GatewayConfig
from jupyter_research_agent.core.gateway import GatewayLauncher, display_url, kernel_env
from jupyter_research_agent.core.kernels import KernelKey
from jupyter_research_agent.core.ledger import Ledger
from jupyter_research_agent.server.gateway_settings import side_kernel_gateway
from jupyter_research_agent.server.options import ResearchAgent

FILES = Path(__file__).parent / "files"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with kernel_gateway(tmp_path_factory.mktemp("gateway")) as gw:
        yield gw


def explore(work: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(FILES / "poor_lr.ipynb", work / "poor_lr.ipynb")
    args = ["explore", "poor_lr.ipynb", "--cell", "train", "--offline", "--max-proposals", "2"]
    return subprocess.run(
        [sys.executable, "-m", "jupyter_research_agent.cli", *args, "--yes", "--format", "json",
         "--ledger", "ledger.sqlite", "--timeout", "30", *flags],
        cwd=work, env={**os.environ, "PYTHONPATH": str(REPO)},
        input="", capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_headless_command_runs_on_the_gateway(gateway: Gateway, tmp_path: Path) -> None:
    # When `explore` runs with --gateway-url and --gateway-auth-token
    proc = explore(tmp_path, "--gateway-url", gateway.url, "--gateway-auth-token", gateway.token)
    # Then the baseline and both variations succeeded
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["baseline"]["metrics"]["accuracy"] == pytest.approx(0.655)
    assert [v["status"] for v in doc["variations"]] == ["succeeded", "succeeded"]
    assert gateway.token not in proc.stdout + proc.stderr
    # And the ledger shows they ran in kernels the gateway started
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        exp = ledger.load_exploration(doc["exploration_id"])
    finally:
        ledger.close()
    runs = [r for r in [exp.baseline, *exp.runs] if r is not None]
    assert len(runs) == 3
    assert {r.kernel_id for r in runs} <= set(gateway.started_ids())


def test_flags_become_gateway_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given the gateway flags of `explore`, the token coming from the environment
    monkeypatch.setenv("JUPYTER_GATEWAY_AUTH_TOKEN", "from-env")
    flags = ["explore", "nb.ipynb", "--cell", "c", "--gateway-url", "https://eg.example:8888"]
    flags += ["--no-gateway-validate-cert", "--gateway-request-timeout", "90"]
    flags += ["--kernel-start-timeout", "300"]
    # When they are turned into engine settings
    config = config_from_args(build_parser().parse_args(flags), tmp_path)
    # Then the side kernels go to that gateway with those settings
    assert config.gateway.url == "https://eg.example:8888"
    assert config.gateway.auth_token is not None
    assert config.gateway.auth_token.get_secret_value() == "from-env"
    assert config.gateway.validate_cert is False
    assert config.gateway.request_timeout_s == 90
    assert config.kernel_start_timeout_s == 300
    # And without --gateway-url they start here
    local = config_from_args(build_parser().parse_args(flags[:4]), tmp_path)
    assert local.gateway.url is None


def test_server_traits_become_gateway_settings(tmp_path: Path) -> None:
    # Given `c.ResearchAgent.side_kernel_gateway_*` in the server's config
    config = Config()
    config.ResearchAgent.side_kernel_gateway_url = "http://gw:8888"
    config.ResearchAgent.side_kernel_gateway_auth_token = "s3cret"
    config.ResearchAgent.side_kernel_gateway_headers = {"X-Team": "vision"}
    config.ResearchAgent.side_kernel_gateway_request_timeout = 120.0
    config.ResearchAgent.side_kernel_gateway_connect_timeout = 5.0
    config.ResearchAgent.side_kernel_gateway_validate_cert = False
    # When the engine's settings are made
    gateway = ResearchAgent(config=config).engine_config(tmp_path).gateway
    # Then they carry every one of them, the token as a secret
    assert gateway.url == "http://gw:8888"
    assert gateway.auth_token == SecretStr("s3cret")
    assert "s3cret" not in repr(gateway)
    assert gateway.headers == {"X-Team": "vision"}
    assert (gateway.request_timeout_s, gateway.connect_timeout_s) == (120.0, 5.0)
    assert gateway.validate_cert is False
    # And without them side kernels start on this machine
    assert ResearchAgent().engine_config(tmp_path).gateway.url is None


def test_side_kernels_follow_the_servers_gateway_client(tmp_path: Path) -> None:
    from jupyter_server.gateway.gateway_client import GatewayClient

    # Given a server whose own kernels go to a gateway (`--gateway-url`, `c.GatewayClient.*`)
    client = GatewayClient(
        url="https://eg:8888",
        auth_token="tok",
        auth_scheme="Bearer",
        headers='{"X-Proxy": "1"}',
        request_timeout=70.0,
        connect_timeout=7.0,
        validate_cert=False,
    )
    server = SimpleNamespace(gateway_config=client)
    # When no side-kernel gateway is configured, Then side kernels use the server's gateway
    followed = side_kernel_gateway(ResearchAgent(), server)
    assert followed.url == "https://eg:8888"
    assert (followed.request_timeout_s, followed.connect_timeout_s) == (70.0, 7.0)
    launcher = GatewayLauncher(followed, start_timeout_s=60)
    assert launcher.headers() == {"X-Proxy": "1", "Authorization": "Bearer tok"}
    # When a side-kernel gateway is configured, Then it wins
    own = ResearchAgent(config=Config({"ResearchAgent": {"side_kernel_gateway_url": "http://x"}}))
    assert side_kernel_gateway(own, server).url == "http://x"
    # When the server has no gateway, Then side kernels start here
    client.url = None
    assert side_kernel_gateway(ResearchAgent(), server).url is None


def test_what_travels_to_the_gateway(tmp_path: Path) -> None:
    # Given a token and a header that already authorises
    launcher = GatewayLauncher(
        GatewayConfig(url="https://user:pw@eg:8443/base/?x=1", auth_token=SecretStr("t")),
        start_timeout_s=90,
    )
    explicit = GatewayLauncher(
        GatewayConfig(url="http://eg", auth_token=SecretStr("t"), headers={"authorization": "k"}),
        start_timeout_s=90,
    )
    # Then the token goes in the Authorization header unless one is given
    assert launcher.headers() == {"Authorization": "token t"}
    assert explicit.headers() == {"authorization": "k"}
    # And messages name the gateway without its credentials or query
    assert launcher.where == "https://eg:8443/base"
    assert display_url("http://eg") == "http://eg"
    # And only KERNEL_* variables travel, with the launch settings gateways read
    env = {"KERNEL_NAMESPACE": "ml", "HOME": "/root", "PATH": "/bin", "KERNEL_USERNAME": "ana"}
    sent = kernel_env(env, KernelKey("python3", tmp_path), start_timeout_s=90)
    assert sent == {
        "KERNEL_NAMESPACE": "ml",
        "KERNEL_USERNAME": "ana",
        "KERNEL_LAUNCH_TIMEOUT": "90",
        "KERNEL_WORKING_DIR": str(tmp_path),
    }
