"""Write docs/openapi.yaml from the pydantic models the REST API serialises.

python scripts/gen_openapi.py           # rewrite the file
python scripts/gen_openapi.py --check   # exit 1 when the committed file is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jupyter_research_agent.core import models  # noqa: E402
from jupyter_research_agent.core.autopilot import AutopilotList, AutopilotView  # noqa: E402
from jupyter_research_agent.server import responses  # noqa: E402
from jupyter_research_agent.server.events import SCHEMA_ID  # noqa: E402
from jupyter_research_agent.server.handlers import API_PREFIX, MAX_BODY_BYTES  # noqa: E402

OUTPUT = ROOT / "docs" / "openapi.yaml"
REF = "#/components/schemas/{model}"

REQUESTS: list[type[BaseModel]] = [
    models.CreateExploration,
    models.AddProposal,
    models.ApproveProposal,
    models.EditProposal,
    models.AutopilotSettings,
]
RESPONSES: list[type[BaseModel]] = [
    responses.StatusResponse,
    responses.ExplorationList,
    responses.ErrorResponse,
    models.Exploration,
    models.Proposal,
    models.Run,
    models.RunDetail,
    AutopilotView,
    AutopilotList,
]

ERRORS = {
    "400": "Invalid JSON, wrong types, unknown fields, a notebook path outside the server "
    "root, an unknown cell.",
    "403": "No credentials, a cookie without the XSRF token, or not authorised.",
    "404": "Unknown id.",
    "409": "Stale code hash, a rejected proposal, or a state that does not allow it.",
    "413": f"Request body over {MAX_BODY_BYTES} bytes.",
    "503": "The language model or a side kernel is unavailable, or the server is stopping.",
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(model)}}


def _operation(
    summary: str,
    ok: tuple[str, type[BaseModel], str],
    errors: list[str],
    *,
    body: type[BaseModel] | None = None,
    params: list[dict[str, Any]] | None = None,
    description: str = "",
    execute: bool = False,
) -> dict[str, Any]:
    status, model, what = ok
    op: dict[str, Any] = {"summary": summary}
    if description or execute:
        extra = " Needs the server's `kernels: execute` permission too." if execute else ""
        op["description"] = (description + extra).strip()
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": _json(body)}
    answers: dict[str, Any] = {status: {"description": what, "content": _json(model)}}
    if status == "201":
        answers[status]["headers"] = {
            "Location": {"description": "URL of the new resource.", "schema": {"type": "string"}}
        }
    for code in ["403", *errors]:
        answers[code] = {"description": ERRORS[code], "content": _json(responses.ErrorResponse)}
    op["responses"] = dict(sorted(answers.items()))
    return op


def _id(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
    }


def paths() -> dict[str, Any]:
    exp_id, prop_id, run_id = _id("exploration_id"), _id("proposal_id"), _id("run_id")
    return {
        f"{API_PREFIX}/status": {
            "get": _operation(
                "Version, model configured or offline, side-kernel pool and queue",
                ("200", responses.StatusResponse, "Server status."),
                [],
            )
        },
        f"{API_PREFIX}/explorations": {
            "get": _operation(
                "List explorations, newest first",
                ("200", responses.ExplorationList, "Explorations."),
                [],
                params=[
                    {
                        "name": "notebook_path",
                        "in": "query",
                        "required": False,
                        "description": "Only explorations of this notebook.",
                        "schema": {"type": "string"},
                    }
                ],
            ),
            "post": _operation(
                "Explore variations of one cell",
                ("201", models.Exploration, "Created; proposals arrive in the background."),
                ["400", "409", "413", "503"],
                body=models.CreateExploration,
                description="Returns at once with status `proposing`; poll the exploration "
                "or listen to the events until its status is `ready`. `cells` carries the "
                "notebook's unsaved cells from the frontend.",
                execute=True,
            ),
        },
        f"{API_PREFIX}/explorations/{{exploration_id}}": {
            "get": _operation(
                "One exploration with proposals, baseline, runs and comparison",
                ("200", models.Exploration, "The exploration."),
                ["404"],
                params=[exp_id],
            )
        },
        f"{API_PREFIX}/explorations/{{exploration_id}}/proposals": {
            "post": _operation(
                "Add the researcher's own variation of the cell",
                ("201", models.Proposal, "The new proposal, waiting for approval."),
                ["400", "404", "409", "413"],
                body=models.AddProposal,
                params=[exp_id],
                execute=True,
            )
        },
        f"{API_PREFIX}/proposals/{{proposal_id}}": {
            "patch": _operation(
                "Replace a proposal's code; its approval is cleared",
                ("200", models.Proposal, "The edited proposal."),
                ["400", "404", "409", "413"],
                body=models.EditProposal,
                params=[prop_id],
                execute=True,
            )
        },
        f"{API_PREFIX}/proposals/{{proposal_id}}/approve": {
            "post": _operation(
                "Approve exactly this code and run it in a side kernel",
                ("200", models.Proposal, "The approved proposal; its runs are queued."),
                ["400", "404", "409", "413", "503"],
                body=models.ApproveProposal,
                params=[prop_id],
                description="`code_sha256` must equal the proposal's current hash (409 "
                "otherwise). Approving again changes nothing and starts no second run.",
                execute=True,
            )
        },
        f"{API_PREFIX}/proposals/{{proposal_id}}/reject": {
            "post": _operation(
                "Reject a proposal; it stays rejected",
                ("200", models.Proposal, "The rejected proposal."),
                ["404", "409"],
                params=[prop_id],
            )
        },
        f"{API_PREFIX}/runs/{{run_id}}": {
            "get": _operation(
                "One run with its captured outputs and metrics",
                ("200", models.RunDetail, "The run."),
                ["404"],
                params=[run_id],
            )
        },
        f"{API_PREFIX}/runs/{{run_id}}/cancel": {
            "post": _operation(
                "Drop a queued run or stop a running one",
                ("200", models.Run, "The run, cancelled unless it had already ended."),
                ["404", "409"],
                params=[run_id],
            )
        },
    }


def autopilot_paths() -> dict[str, Any]:
    exp_id = _id("exploration_id")
    stop = _operation(
        "Stop the autopilot at once",
        ("200", AutopilotView, "The stopped autopilot; its queued and running runs cancelled."),
        ["404"],
        params=[exp_id],
        description="No more rounds; `state.stop_reason` is `stopped by the researcher`. "
        "Stopping an exploration without an active autopilot changes nothing.",
    )
    return {
        f"{API_PREFIX}/autopilot": {
            "get": _operation(
                "Active autopilots across notebooks",
                ("200", AutopilotList, "Running autopilots, oldest first."),
                [],
            )
        },
        f"{API_PREFIX}/explorations/{{exploration_id}}/autopilot": {
            "get": _operation(
                "An exploration's autopilot state and its lineage tree",
                ("200", AutopilotView, "State (null if never started) and the tree."),
                ["404"],
                params=[exp_id],
            ),
            "post": _operation(
                "Put an exploration on autopilot within a budget",
                ("201", AutopilotView, "Started; rounds go on in the background."),
                ["400", "404", "409", "413"],
                body=models.AutopilotSettings,
                params=[exp_id],
                description="Proposals of `allowed_kinds` are approved without a click while "
                "the budget (runs, minutes, model tokens) lasts; others wait. The budget is "
                "fixed for the autopilot's life: 409 while one is active (stop it first).",
                execute=True,
            ),
            "delete": stop,
        },
        f"{API_PREFIX}/explorations/{{exploration_id}}/autopilot/stop": {"post": stop},
    }


def schemas() -> dict[str, Any]:
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((m, "validation") for m in REQUESTS),
        *((m, "serialization") for m in RESPONSES),
    ]
    _, found = models_json_schema(wanted, ref_template=REF)
    defs: dict[str, Any] = found.get("$defs", {})
    return dict(sorted(defs.items()))


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jupyter-research-agent REST API",
            "version": "1",
            "description": (
                "Served by the Jupyter Server extension under the server's base URL. Every "
                "request needs the server's credentials (token header, or cookie plus the "
                "`X-XSRFToken` header); errors are JSON `{message, reason}`. Live changes are "
                f"published as jupyter_events with schema `{SCHEMA_ID}` on "
                "`/api/events/subscribe`; they are hints to refetch these resources."
            ),
        },
        "security": [{"token": []}],
        "paths": {**paths(), **autopilot_paths()},
        "components": {
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`token <server token>`",
                }
            },
            "schemas": schemas(),
        },
    }


def render() -> str:
    header = "# Generated by scripts/gen_openapi.py from the pydantic models. Do not edit.\n"
    body: str = yaml.safe_dump(document(), sort_keys=False, allow_unicode=True, width=100)
    return header + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is out of date: run python scripts/gen_openapi.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
