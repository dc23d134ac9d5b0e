"""The ledger: every exploration, proposal, run, output and token count in one SQLite file.

Each row keeps the model as JSON (``model_dump_json``) beside a few indexed columns, so the
models can grow without schema migrations while queries stay cheap. Several processes (the
server, the headless command, a second server) may write the same file: WAL journaling and a
busy timeout make them take turns instead of failing.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from pydantic import TypeAdapter

from .errors import NotFound
from .models import (
    CellOutputs,
    Exploration,
    ExplorationStatus,
    NotebookDoc,
    Proposal,
    Run,
    RunDetail,
    RunStatus,
    utcnow,
)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000
INTERRUPTED_REASON = "the server stopped before this run finished"
PROPOSING_INTERRUPTED = "the server stopped before the proposals were ready"

_CELLS = TypeAdapter(list[CellOutputs])
_NON_TERMINAL = tuple(s.value for s in RunStatus if not s.terminal)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS explorations (
    id TEXT PRIMARY KEY,
    notebook_path TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    baseline_run_id TEXT,
    owner TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL,
    notebook TEXT
);
CREATE INDEX IF NOT EXISTS explorations_notebook ON explorations (notebook_path, created_at);
CREATE TABLE IF NOT EXISTS proposals (
    id TEXT PRIMARY KEY,
    exploration_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS proposals_exploration ON proposals (exploration_id);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    exploration_id TEXT NOT NULL,
    proposal_id TEXT,
    is_baseline INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_exploration ON runs (exploration_id);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
CREATE TABLE IF NOT EXISTS run_outputs (
    run_id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    exploration_id TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_exploration ON usage (exploration_id);
"""


def _iso(value: datetime) -> str:
    return value.isoformat()


def _process_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_alive(owner: str) -> bool:
    """True when ``owner`` names another process on this machine that still runs.

    Only such rows are left alone on open; anything else unfinished was abandoned.
    """
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _create_private_file(path: Path) -> None:
    """Create the database file readable by its owner only, before SQLite opens it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)


class Ledger:
    """A SQLite-backed store of explorations. Safe to share between threads of one process."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        _create_private_file(self.path)
        # Autocommit mode: every write below opens its own IMMEDIATE transaction, which takes
        # the write lock up front so two processes never deadlock on a lock upgrade.
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
        self._lock = threading.RLock()
        self._owner = _process_owner()
        self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._migrate()
        self.interrupted_on_open = self._mark_interrupted()

    # ------------------------------------------------------------ setup

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self._write() as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"the ledger {self.path} was written by a newer version "
                    f"(schema {version}, this version knows {SCHEMA_VERSION})"
                )
            if version < 1:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _mark_interrupted(self) -> list[str]:
        """Unfinished runs of a process that is gone will never finish: say so.

        Rows owned by another live process on this machine (a server while the headless
        command lists explorations) are left alone.
        """
        marks = ",".join("?" for _ in _NON_TERMINAL)
        now = utcnow()
        touched: list[str] = []
        with self._write() as conn:
            rows = conn.execute(
                f"SELECT data, owner FROM runs WHERE status IN ({marks})", _NON_TERMINAL
            ).fetchall()
            for data, owner in rows:
                if _owner_alive(owner):
                    continue
                run = Run.model_validate_json(data)
                run.status = RunStatus.INTERRUPTED
                run.reason = INTERRUPTED_REASON
                run.ended_at = run.ended_at or now
                self._upsert_run(conn, run)
                touched.append(run.id)
            unfinished = conn.execute(
                "SELECT data, owner FROM explorations WHERE status IN (?, ?)",
                (ExplorationStatus.PROPOSING.value, ExplorationStatus.RUNNING.value),
            ).fetchall()
            for data, owner in unfinished:
                if _owner_alive(owner):
                    continue
                exp = Exploration.model_validate_json(data)
                if exp.status == ExplorationStatus.PROPOSING:
                    exp.status = ExplorationStatus.FAILED
                    exp.error = PROPOSING_INTERRUPTED
                else:
                    exp.status = ExplorationStatus.DONE
                exp.updated_at = now
                conn.execute(
                    "UPDATE explorations SET status = ?, updated_at = ?, data = ? WHERE id = ?",
                    (exp.status.value, _iso(now), self._exploration_json(exp), exp.id),
                )
        return touched

    # ------------------------------------------------------------ writes

    @staticmethod
    def _exploration_json(exp: Exploration) -> str:
        # Proposals and runs live in their own tables; the row keeps the rest.
        return exp.model_dump_json(exclude={"proposals", "runs", "baseline"})

    def _upsert_proposal(self, conn: sqlite3.Connection, p: Proposal) -> None:
        conn.execute(
            "INSERT INTO proposals (id, exploration_id, status, created_at, data)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " status = excluded.status, data = excluded.data",
            (p.id, p.exploration_id, p.status.value, _iso(p.created_at), p.model_dump_json()),
        )

    def _upsert_run(self, conn: sqlite3.Connection, run: Run) -> None:
        # A RunDetail's outputs belong in run_outputs, not in the run row.
        data = run.model_dump_json(exclude={"cells"}) if isinstance(run, RunDetail) else None
        conn.execute(
            "INSERT INTO runs (id, exploration_id, proposal_id, is_baseline, status, created_at,"
            " owner, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " status = excluded.status, owner = excluded.owner, data = excluded.data",
            (
                run.id,
                run.exploration_id,
                run.proposal_id,
                int(run.is_baseline),
                run.status.value,
                _iso(run.created_at),
                self._owner,
                data or run.model_dump_json(),
            ),
        )

    def save_exploration(self, exp: Exploration) -> None:
        """Insert or update an exploration with its proposals and runs."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO explorations (id, notebook_path, status, created_at, updated_at,"
                " baseline_run_id, owner, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
                " updated_at = excluded.updated_at, baseline_run_id = excluded.baseline_run_id,"
                " owner = excluded.owner, data = excluded.data",
                (
                    exp.id,
                    exp.notebook_path,
                    exp.status.value,
                    _iso(exp.created_at),
                    _iso(exp.updated_at),
                    exp.baseline.id if exp.baseline else None,
                    self._owner,
                    self._exploration_json(exp),
                ),
            )
            for proposal in exp.proposals:
                self._upsert_proposal(conn, proposal)
            for run in [exp.baseline, *exp.runs]:
                if run is not None:
                    self._upsert_run(conn, run)

    def save_notebook(self, exploration_id: str, notebook: NotebookDoc) -> None:
        """Keep the notebook an exploration runs against, so approvals work after a restart."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE explorations SET notebook = ? WHERE id = ?",
                (notebook.model_dump_json(), exploration_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no exploration {exploration_id!r}")

    def save_proposal(self, p: Proposal) -> None:
        with self._write() as conn:
            self._upsert_proposal(conn, p)

    def save_run(self, run: Run) -> None:
        with self._write() as conn:
            self._upsert_run(conn, run)

    def save_run_outputs(self, run_id: str, cells: list[CellOutputs]) -> None:
        data = "[" + ",".join(c.model_dump_json() for c in cells) + "]"
        with self._write() as conn:
            conn.execute(
                "INSERT INTO run_outputs (run_id, data) VALUES (?, ?)"
                " ON CONFLICT (run_id) DO UPDATE SET data = excluded.data",
                (run_id, data),
            )

    def record_usage(
        self, exploration_id: str, model: str, prompt_tokens: int, completion_tokens: int
    ) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO usage (exploration_id, model, prompt_tokens, completion_tokens,"
                " created_at) VALUES (?, ?, ?, ?, ?)",
                (exploration_id, model, prompt_tokens, completion_tokens, _iso(utcnow())),
            )

    # ------------------------------------------------------------ reads

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _assemble(self, data: str, baseline_id: str | None) -> Exploration:
        exp = Exploration.model_validate_json(data)
        proposals = self._read(
            "SELECT data FROM proposals WHERE exploration_id = ? ORDER BY rowid", (exp.id,)
        )
        runs = self._read(
            "SELECT data FROM runs WHERE exploration_id = ? ORDER BY rowid", (exp.id,)
        )
        exp.proposals = [Proposal.model_validate_json(str(row[0])) for row in proposals]
        loaded = [Run.model_validate_json(str(row[0])) for row in runs]
        exp.baseline = next((r for r in loaded if r.id == baseline_id), None)
        exp.runs = [r for r in loaded if r.id != baseline_id]
        return exp

    def load_exploration(self, exp_id: str) -> Exploration:
        rows = self._read("SELECT data, baseline_run_id FROM explorations WHERE id = ?", (exp_id,))
        if not rows:
            raise NotFound(f"no exploration {exp_id!r}")
        data, baseline_id = rows[0]
        return self._assemble(str(data), baseline_id if isinstance(baseline_id, str) else None)

    def load_notebook(self, exploration_id: str) -> NotebookDoc | None:
        rows = self._read("SELECT notebook FROM explorations WHERE id = ?", (exploration_id,))
        if not rows:
            raise NotFound(f"no exploration {exploration_id!r}")
        data = rows[0][0]
        return NotebookDoc.model_validate_json(data) if isinstance(data, str) else None

    def list_explorations(self, notebook_path: str | None = None) -> list[Exploration]:
        """Explorations, newest first; optionally only those of one notebook."""
        if notebook_path is None:
            rows = self._read(
                "SELECT data, baseline_run_id FROM explorations"
                " ORDER BY created_at DESC, rowid DESC"
            )
        else:
            rows = self._read(
                "SELECT data, baseline_run_id FROM explorations WHERE notebook_path = ?"
                " ORDER BY created_at DESC, rowid DESC",
                (notebook_path,),
            )
        return [
            self._assemble(str(data), baseline if isinstance(baseline, str) else None)
            for data, baseline in rows
        ]

    def find_proposal(self, proposal_id: str) -> Proposal:
        rows = self._read("SELECT data FROM proposals WHERE id = ?", (proposal_id,))
        if not rows:
            raise NotFound(f"no proposal {proposal_id!r}")
        return Proposal.model_validate_json(str(rows[0][0]))

    def find_run(self, run_id: str) -> RunDetail:
        rows = self._read("SELECT data FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise NotFound(f"no run {run_id!r}")
        detail = RunDetail.model_validate_json(str(rows[0][0]))
        detail.cells = self.load_run_outputs(run_id)
        return detail

    def load_run_outputs(self, run_id: str) -> list[CellOutputs]:
        rows = self._read("SELECT data FROM run_outputs WHERE run_id = ?", (run_id,))
        if not rows:
            return []
        return _CELLS.validate_json(str(rows[0][0]))

    def usage(self, exploration_id: str) -> dict[str, int]:
        """Token totals of one exploration: prompt_tokens, completion_tokens, requests."""
        rows = self._read(
            "SELECT COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), COUNT(*)"
            " FROM usage WHERE exploration_id = ?",
            (exploration_id,),
        )
        prompt, completion, count = rows[0]
        return {
            "prompt_tokens": int(str(prompt)),
            "completion_tokens": int(str(completion)),
            "requests": int(str(count)),
        }

    def close(self) -> None:
        with self._lock:
            self._conn.close()
