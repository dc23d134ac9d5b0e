"""Engine events to jupyter_events: live views listen on `/api/events/subscribe`.

An event is only a hint to refetch the REST resource, so the payload stays small: scalars,
a few tail lines of output, short strings. Configured secrets are redacted from it as a last
line of defence.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from ..core.models import EngineEvent

SCHEMA_ID = "https://events.jupyter.org/jupyter_research_agent/engine/v1"
SCHEMA_PATH = Path(__file__).parent / "schemas" / "engine-v1.yaml"

MAX_LIST_ITEMS = 20  # tail lines and other lists keep their last items
MAX_STRING_CHARS = 400
MAX_DICT_KEYS = 40
MAX_DEPTH = 3
REDACTED = "[redacted]"


class EventSink(Protocol):
    """What the bridge needs of jupyter_events' EventLogger."""

    def emit(self, *, schema_id: str, data: dict[str, Any]) -> Any: ...


def _small(value: Any, depth: int = 0) -> Any:
    """A bounded copy of a JSON-like value; whatever is too deep or unknown becomes None."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if len(value) <= MAX_STRING_CHARS:
            return value
        return value[: MAX_STRING_CHARS - 1] + "…"
    if depth >= MAX_DEPTH:
        return None
    if isinstance(value, list | tuple):
        return [_small(item, depth + 1) for item in list(value)[-MAX_LIST_ITEMS:]]
    if isinstance(value, dict):
        items = list(value.items())[:MAX_DICT_KEYS]
        return {str(key): _small(item, depth + 1) for key, item in items}
    return None


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def event_payload(event: EngineEvent, secrets: Sequence[str] = ()) -> dict[str, Any]:
    """The jupyter_events payload of an engine event: bounded in size, secrets removed."""
    raw = event.model_dump(mode="json")
    payload = {
        "type": raw["type"],
        "exploration_id": raw["exploration_id"],
        "notebook_path": raw["notebook_path"],
        "id": raw["id"],
        "status": raw["status"],
        "data": _small(raw["data"]) or {},
    }
    text = json.dumps(payload)
    if any(secret and secret in text for secret in secrets):
        payload = json.loads(_redact(text, secrets))
    return payload


class EventBridge:
    """An engine listener that re-emits every engine event on the server's event bus."""

    def __init__(self, sink: EventSink, log: logging.Logger, secrets: Sequence[str] = ()) -> None:
        self._sink = sink
        self._log = log
        self._secrets = tuple(s for s in secrets if s)

    def __call__(self, event: EngineEvent) -> None:
        # Called from inside the engine: a failure here must never break a run.
        try:
            self._sink.emit(schema_id=SCHEMA_ID, data=event_payload(event, self._secrets))
        except Exception as err:
            self._log.warning("research agent: could not emit %s event: %s", event.type, err)
