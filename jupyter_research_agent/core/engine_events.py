"""Live events and waiting for the engine: listeners, and waiters woken on every change."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .models import EngineEvent, Exploration

log = logging.getLogger(__name__)

Listener = Callable[[EngineEvent], None]


class EventHub:
    """Fans engine events out to listeners and wakes coroutines waiting for a state change."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._changed = asyncio.Event()
        self._closed = False

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add a listener; the returned function removes it."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def emit(
        self,
        kind: str,
        exp: Exploration,
        object_id: str,
        status: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        event = EngineEvent(
            type=kind,
            exploration_id=exp.id,
            notebook_path=exp.notebook_path,
            id=object_id,
            status=str(status),
            data=data or {},
        )
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                # A broken live view must never break the engine.
                log.exception("engine event listener failed")

    def signal(self) -> None:
        """Wake every waiter; each re-checks its own condition."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def close(self) -> None:
        """Release every waiter for good (the engine is gone)."""
        self._closed = True
        self.signal()

    async def wait_until(self, done: Callable[[], bool]) -> None:
        while not done() and not self._closed:
            await self._changed.wait()
