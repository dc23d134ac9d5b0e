"""The headless command's options for starting side kernels on a kernel gateway."""

from __future__ import annotations

import argparse
import os
from typing import Any

from pydantic import SecretStr

from .cli_types import positive_float
from .core.config import GatewayConfig

TOKEN_ENV = "JUPYTER_GATEWAY_AUTH_TOKEN"  # the variable jupyter_server's gateway client reads


def add_gateway_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("side kernels on a kernel gateway")
    group.add_argument(
        "--gateway-url",
        metavar="URL",
        help="start side kernels on this Kernel Gateway or Enterprise Gateway",
    )
    group.add_argument(
        "--gateway-auth-token",
        metavar="TOKEN",
        help=f"the gateway's token (default: ${TOKEN_ENV})",
    )
    group.add_argument(
        "--gateway-validate-cert",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="check the gateway's TLS certificate (default: yes)",
    )
    group.add_argument(
        "--gateway-request-timeout",
        type=positive_float,
        metavar="SECONDS",
        help="per request to the gateway (default: 60)",
    )
    group.add_argument(
        "--kernel-start-timeout",
        type=positive_float,
        metavar="SECONDS",
        help="how long a side kernel may take to start (default: 60; raise it for clusters)",
    )


def gateway_settings(args: argparse.Namespace) -> dict[str, Any]:
    """EngineConfig fields the gateway options ask for; empty when none was given."""
    settings: dict[str, Any] = {}
    if getattr(args, "kernel_start_timeout", None):
        settings["kernel_start_timeout_s"] = args.kernel_start_timeout
    url = getattr(args, "gateway_url", None)
    if not url:
        return settings
    token = args.gateway_auth_token or os.environ.get(TOKEN_ENV) or ""
    gateway = GatewayConfig(
        url=url,
        auth_token=SecretStr(token) if token else None,
        validate_cert=args.gateway_validate_cert,
    )
    if args.gateway_request_timeout:
        gateway.request_timeout_s = args.gateway_request_timeout
    settings["gateway"] = gateway
    return settings
