"""Heavy imports made off the event loop.

A few dependencies take from a fraction of a second to seconds to import the first time:
``openai`` (behind the model proposer and the reading of results) and ``jupyter_client`` with
what its kernelspec lookup loads (IPython, ipykernel). The core imports them on first use, to
keep its own import light and free of server code; code on the event loop first awaits
:func:`import_off_loop`, so the import runs in a worker thread while the loop keeps serving.
Once a module is loaded, the later ``import`` statements are dictionary lookups.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Iterable


def _loaded(name: str) -> bool:
    # A module another thread is still importing is already in sys.modules; importing it from
    # the loop would wait on its import lock, so it does not count as loaded yet.
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return module is not None and not getattr(spec, "_initializing", False)


def _import_all(names: Iterable[str], optional: bool) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            if not optional:
                raise


async def import_off_loop(*names: str, optional: bool = False) -> None:
    """Import ``names`` in a worker thread unless all are loaded already.

    ``optional``: a missing module is not an error (the caller copes with its absence);
    otherwise the ImportError propagates to the awaiting code.
    """
    missing = [name for name in names if not _loaded(name)]
    if missing:
        await asyncio.to_thread(_import_all, missing, optional)
