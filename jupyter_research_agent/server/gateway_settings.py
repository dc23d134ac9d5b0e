"""Where side kernels start: `c.ResearchAgent.side_kernel_gateway_*`, else the server's gateway.

A server started with ``--gateway-url`` runs every kernel there; side kernels follow it, with the
same URL, token, headers and timeouts. An explicit side-kernel gateway URL wins over that.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from ..core.config import GatewayConfig

if TYPE_CHECKING:
    from .options import ResearchAgent


def side_kernel_gateway(options: ResearchAgent, server: Any) -> GatewayConfig:
    """The gateway settings for the engine; an empty URL means side kernels start locally."""
    if options.side_kernel_gateway_url:
        token = options.side_kernel_gateway_auth_token
        return GatewayConfig(
            url=options.side_kernel_gateway_url,
            auth_token=SecretStr(token) if token else None,
            headers=dict(options.side_kernel_gateway_headers),
            request_timeout_s=options.side_kernel_gateway_request_timeout,
            connect_timeout_s=options.side_kernel_gateway_connect_timeout,
            validate_cert=options.side_kernel_gateway_validate_cert,
        )
    client = getattr(server, "gateway_config", None)
    if client is None or not getattr(client, "gateway_enabled", False):
        return GatewayConfig()
    return _follow_server(client)


def _follow_server(client: Any) -> GatewayConfig:
    """The settings of jupyter_server's GatewayClient (`c.GatewayClient.*`, --gateway-url)."""
    try:
        headers = json.loads(client.headers or "{}")
    except ValueError:
        headers = {}
    token = client.auth_token or ""
    return GatewayConfig(
        url=client.url,
        auth_token=SecretStr(token) if token else None,
        auth_scheme=client.auth_scheme or "",
        auth_header_key=client.auth_header_key or "Authorization",
        headers={str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
        request_timeout_s=float(client.request_timeout),
        connect_timeout_s=float(client.connect_timeout),
        validate_cert=bool(client.validate_cert),
    )
