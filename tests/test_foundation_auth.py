"""Every HTTP endpoint of the extension rejects requests without credentials.

The routes are read from the running server's router, so handlers added later are covered
without touching this file.
"""

from __future__ import annotations

from typing import Any

import pytest
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.routing import PathMatches, Router, Rule
from tornado.util import re_unescape
from tornado.websocket import WebSocketHandler, websocket_connect

from jupyter_research_agent.server.handlers import API_PREFIX

VERBS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
DUMMY_ID = "00000000-dummy"
# Same arbitrary value in cookie and header passes tornado's XSRF check, so a 403 can only
# come from the authentication/authorization layer.
XSRF = "test-xsrf-value"


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    # The server's default: unauthenticated access allowed. Only the handlers' own decorators
    # protect them then, which is what these tests prove.
    jp_server_config["ServerApp"]["allow_unauthenticated_access"] = True
    return jp_server_config


def _rules(router: Any) -> list[Rule]:
    """All leaf rules of a tornado router, depth first."""
    found: list[Rule] = []
    for rule in getattr(router, "rules", []):
        if isinstance(rule.target, Router):
            found.extend(_rules(rule.target))
        else:
            found.append(rule)
    return found


def _concrete_path(pattern: str) -> str:
    """A request path for a route pattern, with a dummy value for every (possibly nested) group."""
    out: list[str] = []
    depth = 0
    escaped = False
    for char in pattern.rstrip("$"):
        if escaped:
            escaped = False
            if depth == 0:
                out.append("\\" + char)
            continue
        if char == "\\":
            escaped = True
        elif char == "(":
            if depth == 0:
                out.append(DUMMY_ID)
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0:
            out.append(char)
    return re_unescape("".join(out))


def _our_verbs(handler: type[web.RequestHandler]) -> list[str]:
    """HTTP verbs the handler implements in this package's code."""
    return [
        verb
        for verb in VERBS
        if getattr(getattr(handler, verb.lower(), None), "__module__", "").startswith(
            "jupyter_research_agent"
        )
    ]


def our_routes(serverapp: Any) -> list[tuple[str, type[web.RequestHandler]]]:
    routes = []
    for rule in _rules(serverapp.web_app.default_router):
        matcher = rule.matcher
        if isinstance(matcher, PathMatches) and API_PREFIX in matcher.regex.pattern:
            routes.append((_concrete_path(matcher.regex.pattern), rule.target))
    return routes


async def test_routes_are_discovered(jp_serverapp: Any) -> None:
    # Given the running server with the extension
    # When its routes are listed
    paths = [path for path, _ in our_routes(jp_serverapp)]

    # Then the status endpoint is among them (the walk below is not vacuous)
    assert any(path.endswith(f"{API_PREFIX}/status") for path in paths), paths


async def test_every_endpoint_rejects_requests_without_credentials(
    jp_serverapp: Any, http_server_client: Any, jp_http_port: int
) -> None:
    # http_server_client makes the server listen; requests go through a bare client, no token
    # Given every route and verb the extension serves
    routes = our_routes(jp_serverapp)
    client = AsyncHTTPClient()
    checked: list[str] = []
    for path, handler in routes:
        if issubclass(handler, WebSocketHandler):
            # When a websocket is opened without a token, Then the upgrade is refused with 403
            url = f"ws://127.0.0.1:{jp_http_port}{path}"
            with pytest.raises(HTTPClientError) as refused:
                await websocket_connect(url)
            assert refused.value.code == 403, path
            checked.append(f"WS {path}")
            continue
        verbs = _our_verbs(handler)
        assert verbs, f"{handler.__name__} at {path} implements no verb"
        for verb in verbs:
            # When the verb is requested without a token
            request = HTTPRequest(
                f"http://127.0.0.1:{jp_http_port}{path}",
                method=verb,
                body="{}" if verb in ("POST", "PUT", "PATCH") else None,
                headers={"Cookie": f"_xsrf={XSRF}", "X-XSRFToken": XSRF},
                allow_nonstandard_methods=True,
                follow_redirects=False,
            )
            response = await client.fetch(request, raise_error=False)
            # Then it is refused with 403
            assert response.code == 403, f"{verb} {path} answered {response.code}"
            checked.append(f"{verb} {path}")
    assert checked
