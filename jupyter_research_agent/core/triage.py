"""Error triage: turn a ten-thousand-line log into the few lines that matter.

:func:`condense_error` works offline on a cell's nbformat outputs: ANSI escapes stripped,
repeated lines folded, the exception and the frames in the researcher's own code kept, library
frames collapsed, the last lines printed before the failure, and a one-line likely cause.
:func:`triage` adds fixes proposed by a language model when one is configured.

Fixes are proposals of kind FIX and are *not* verified here: the engine runs each one like a
variation in a side kernel; a fix whose run succeeds is shown as working, a fix whose run still
fails is shown with its new error (``condense_error`` of that run's outputs).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from .errors import CellError, ProviderError
from .models import NotebookDoc, Proposal

if TYPE_CHECKING:
    from .llm.proposer import LLMProposer

log = logging.getLogger(__name__)

ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]")
# Only the end of a huge log is analysed: the failure is there. The rest is counted.
MAX_ANALYSED_CHARS = 1_000_000
LINES_BEFORE = 15
MAX_LINE_CHARS = 400

_FRAME_HEADER_RE = re.compile(
    r"^(?:Cell In\s*\[\d+\], line \d+"  # IPython >= 8
    r"|Input In \[\d+\]"  # IPython 7/8 early
    r"|<ipython-input-[^>]*>"  # IPython < 8
    r"|File [^\n]*?:\d+(?:, in .*)?$"  # IPython >= 8 library frame
    r"|\s*File \"[^\"]+\", line \d+"  # plain Python
    r"|/tmp/ipykernel_\d+/\d+\.py)"
)
_RESEARCHER_RE = re.compile(r"Cell In\s*\[|Input In \[|<ipython-input-|/tmp/ipykernel_")
_LIBRARY_RE = re.compile(
    r"site-packages|dist-packages|/lib/python\d|\.pyx\b|\.pxi\b|<frozen |\.pyenv/|/usr/lib/"
)
_EXC_LINE_RE = re.compile(
    r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Warning)\w*)(?::\s?(.*))?$"
)


class CondensedError(BaseModel):
    """The essentials of a failed cell's log, fit for a person and for a prompt."""

    found: bool = False
    ename: str = ""
    evalue: str = ""
    chained_from: list[str] = Field(default_factory=list)  # earlier exceptions of a chain
    frames: list[str] = Field(default_factory=list)  # researcher frames; library runs collapsed
    library_frames: int = 0
    lines_before: list[str] = Field(default_factory=list)  # folded output before the failure
    total_lines: int = 0
    folded_lines: int = 0
    category: str = ""  # missing_package, shape_mismatch, key_error, cuda_oom, nan, ...
    likely_cause: str = ""
    text: str = ""


class TriageReport(BaseModel):
    """What ``jupyter research-agent triage`` prints (``--format json`` dumps this model)."""

    notebook_path: str
    cell_id: str
    error: CondensedError
    likely_cause: str
    cause_source: str = "offline"  # "offline" or "llm"
    fixes: list[Proposal] = Field(default_factory=list)
    provider_error: str | None = None


def strip_ansi(text: str) -> str:
    return ANSI_RE.sub("", text)


def _text_of(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return "" if value is None else str(value)


# ---------------------------------------------------------------- folding


def _template(line: str) -> str:
    """Lines that differ only in their numbers share a template (epoch 1 / epoch 2 ...)."""
    return re.sub(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?", "#", line)


def fold_lines(lines: list[str]) -> tuple[list[str], int]:
    """Fold runs of a repeated line or block of up to three lines.

    Identical repeats keep one copy and a count; repeats that differ only in their numbers keep
    the first and the last copy. Returns the folded lines and how many lines were removed.
    """
    templates = [_template(line) for line in lines]
    out: list[str] = []
    removed = 0
    i, n = 0, len(lines)
    while i < n:
        best_k, best_reps = 1, 1
        for k in (1, 2, 3):
            if i + 2 * k > n:
                break
            block = templates[i : i + k]
            reps = 1
            while i + (reps + 1) * k <= n and templates[i + reps * k : i + (reps + 1) * k] == block:
                reps += 1
            if reps > 1 and reps * k > best_reps * best_k:
                best_k, best_reps = k, reps
        k, reps = best_k, best_reps
        if reps < 2 or (reps == 2 and lines[i : i + k] != lines[i + k : i + 2 * k]):
            out.append(lines[i])
            i += 1
            continue
        first = lines[i : i + k]
        last = lines[i + (reps - 1) * k : i + reps * k]
        out.extend(first)
        if first == last and all(
            lines[i + r * k : i + (r + 1) * k] == first for r in range(1, reps)
        ):
            out.append(f"… repeated {reps - 1:,} more times")
            removed += (reps - 1) * k - 1
        else:
            out.append(f"… {(reps - 2) * k:,} similar lines …")
            out.extend(last)
            removed += (reps - 2) * k - 1
        i += reps * k
    return out, max(removed, 0)


# ---------------------------------------------------------------- tracebacks


def _split_frames(lines: list[str]) -> tuple[list[list[str]], list[str]]:
    """Frames (header + body) of one traceback segment, and the lines after the last frame."""
    frames: list[list[str]] = []
    tail: list[str] = []
    for line in lines:
        if _FRAME_HEADER_RE.match(line):
            frames.append([line])
        elif frames and not _EXC_LINE_RE.match(line.strip()):
            frames[-1].append(line)
        else:
            tail.append(line)
    return frames, tail


def _frame_summary(frame: list[str]) -> str:
    """Header plus the line that raised (IPython's arrow, or plain Python's code line)."""
    header = frame[0].strip()
    body = [line for line in frame[1:] if line.strip()]
    arrow = [line.rstrip() for line in body if line.lstrip().startswith("---->")]
    if arrow:
        return header + "\n  " + arrow[-1].strip()
    if body and not _RESEARCHER_RE.search(header):
        return header + "\n  " + body[0].strip()
    return header + ("\n  " + body[-1].strip() if body else "")


def _library_name(header: str) -> str:
    match = re.search(r"(?:site|dist)-packages/([A-Za-z0-9_]+)", header) or re.search(
        r"/lib/python\d+(?:\.\d+)?/([A-Za-z0-9_]+)", header
    )
    if match:
        return match.group(1)
    match = re.search(r"(?:File |\")([A-Za-z0-9_]+)/", header)
    if match and not header.split(maxsplit=1)[-1].startswith(("/", "~")):
        return match.group(1)
    return "python"


def condense_frames(frames: list[list[str]]) -> tuple[list[str], int]:
    kept: list[str] = []
    hidden = 0
    run: list[str] = []

    def flush() -> None:
        if run:
            names = ", ".join(dict.fromkeys(run))
            plural = "s" if len(run) > 1 else ""
            kept.append(f"… {len(run)} library frame{plural} ({names}) …")
            run.clear()

    for frame in frames:
        header = frame[0]
        if _RESEARCHER_RE.search(header) or not _LIBRARY_RE.search(header):
            flush()
            kept.append(_frame_summary(frame))
        else:
            run.append(_library_name(header))
            hidden += 1
    flush()
    return kept, hidden


def _parse_traceback(text: str, result: CondensedError) -> None:
    lines = [line.rstrip() for line in strip_ansi(text).splitlines()]
    segments: list[list[str]] = [[]]
    for line in lines:
        if "Traceback (most recent call last)" in line:
            segments.append([])
        elif not set(line.strip()) <= {"-"} or not line.strip():
            segments[-1].append(line)
    segments = [s for s in segments if any(x.strip() for x in s)]
    if not segments:
        return
    for earlier in segments[:-1]:
        exc = [x.strip() for x in earlier if _EXC_LINE_RE.match(x.strip())]
        if exc:
            result.chained_from.append(exc[-1][:MAX_LINE_CHARS])
    frames, tail = _split_frames(segments[-1])
    result.frames, result.library_frames = condense_frames(frames)
    if not result.ename:
        exc_lines = [x.strip() for x in tail if _EXC_LINE_RE.match(x.strip())]
        if exc_lines:
            match = _EXC_LINE_RE.match(exc_lines[-1])
            assert match is not None
            result.ename, result.evalue = match.group(1), (match.group(2) or "")


# ---------------------------------------------------------------- condense


def condense_error(outputs: list[dict[str, Any]]) -> CondensedError:
    """Condense one cell's outputs around its error (if any); pure and offline."""
    result = CondensedError()
    streams: list[str] = []
    error: dict[str, Any] | None = None
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            streams.append(_text_of(output.get("text")))
        elif kind == "error":
            error = output
    log_text = "".join(streams)
    skipped = 0
    if len(log_text) > MAX_ANALYSED_CHARS:
        newline = log_text.find("\n", len(log_text) - MAX_ANALYSED_CHARS)
        skipped = log_text.count("\n", 0, newline + 1)
        log_text = log_text[newline + 1 :]
    log_lines = strip_ansi(log_text).splitlines()
    traceback_in_log = -1
    if error is None:
        for i in range(len(log_lines) - 1, -1, -1):
            if "Traceback (most recent call last)" in log_lines[i]:
                traceback_in_log = i
                break
    if error is not None:
        result.found = True
        result.ename = strip_ansi(str(error.get("ename", "")))
        result.evalue = strip_ansi(str(error.get("evalue", "")))
        _parse_traceback("\n".join(_text_of(t) for t in error.get("traceback") or []), result)
    elif traceback_in_log >= 0:
        result.found = True
        _parse_traceback("\n".join(log_lines[traceback_in_log:]), result)
        log_lines = log_lines[:traceback_in_log]
    result.total_lines = skipped + len(log_lines)
    folded, removed = fold_lines([line[:MAX_LINE_CHARS] for line in log_lines])
    result.folded_lines = removed + skipped
    result.lines_before = folded[-LINES_BEFORE:]
    result.evalue = result.evalue[:2000]
    result.category, result.likely_cause = likely_cause(result, "\n".join(folded[-200:]))
    result.text = render(result)
    return result


def render(err: CondensedError) -> str:
    if not err.found:
        return "No error in this cell's outputs."
    parts = [f"{err.ename}: {err.evalue}".rstrip(": ")]
    parts += [f"  (chained from {c})" for c in err.chained_from[-2:]]
    if err.likely_cause:
        parts.append(f"Likely cause: {err.likely_cause}")
    if err.frames:
        parts.append("Where:")
        parts += ["  " + f.replace("\n", "\n  ") for f in err.frames]
    if err.lines_before:
        folded = f", {err.folded_lines:,} folded" if err.folded_lines else ""
        parts.append(f"Last output before the failure ({err.total_lines:,} lines{folded}):")
        parts += ["  " + line for line in err.lines_before]
    return "\n".join(parts)


# ---------------------------------------------------------------- likely causes

_CAUSES: list[tuple[str, re.Pattern[str], str]] = [
    (
        "cuda_oom",
        re.compile(r"CUDA out of memory|OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED", re.I),
        "the GPU ran out of memory: lower the batch size or model size, or free cached tensors.",
    ),
    (
        "shape_mismatch",
        re.compile(
            r"shapes? .*(?:not aligned|cannot be multiplied|mismatch)|size mismatch"
            r"|could not be broadcast|inconsistent numbers of samples|Expected input batch_size"
            r"|doesn't match the broadcast shape|expected .* features|has \d+ features,"
            r"|dimension .* does not match|must match the size",
            re.I,
        ),
        "a shape mismatch between arrays or tensors: check the shapes flowing into the failing "
        "line (features, batch size, a transpose or reshape).",
    ),
    (
        "nan",
        re.compile(r"\bloss\W+nan\b|Input (?:X |y )?contains NaN|nan loss|loss is nan", re.I),
        "values became NaN (diverging training or missing values in the data): lower the "
        "learning rate, clip gradients, or clean/impute the inputs.",
    ),
    (
        "memory",
        re.compile(r"^MemoryError|Unable to allocate", re.I),
        "the process ran out of memory: work on a sample or in chunks, or use smaller dtypes.",
    ),
]


def likely_cause(err: CondensedError, recent_output: str = "") -> tuple[str, str]:
    """A category and a one-line cause, from the exception and the output just before it."""
    if not err.found:
        return "", ""
    ename, evalue = err.ename.rsplit(".", 1)[-1], err.evalue
    quoted = re.search(r"['\"]([^'\"]+)['\"]", evalue)
    name = quoted.group(1) if quoted else evalue
    if ename in ("ModuleNotFoundError", "ImportError") and "No module named" in evalue:
        package = name.split(".")[0]
        return "missing_package", (
            f"the package providing `{package}` is not installed in this kernel's environment: "
            f"install it (for example `%pip install {package}`) or fix the import name."
        )
    if ename == "FileNotFoundError":
        return "file_not_found", (
            f"the file `{name}` does not exist: relative paths start from the notebook's "
            "directory; check the path and that the file was created or downloaded."
        )
    blob = f"{ename}: {evalue}\n{recent_output}"
    for category, pattern, cause in _CAUSES:
        if pattern.search(blob):
            return category, cause
    if ename == "KeyError":
        pandas = any("pandas" in f for f in err.frames)
        where = "a DataFrame column" if pandas else "a dict key or column"
        return "key_error", (
            f"`{name}` is not {where}: check its spelling and what the data actually holds "
            "(for example `df.columns`)."
        )
    if ename == "NameError":
        return "name_error", (
            f"`{name.split()[-1] if name else '?'}` is not defined: run the cell that defines "
            "it first, or fix the name."
        )
    if ename == "KeyboardInterrupt":
        return "interrupted", "the cell was interrupted before it finished."
    if ename in ("ZeroDivisionError",):
        return "zero_division", "a division by zero: guard the denominator (empty data?)."
    where = next((f.splitlines()[0] for f in reversed(err.frames) if _RESEARCHER_RE.search(f)), "")
    suffix = f" raised at {where}" if where else ""
    return "other", f"{ename}{suffix}: {evalue[:200]}".rstrip(": ")


# ---------------------------------------------------------------- triage


async def triage(
    notebook: NotebookDoc,
    cell_id: str,
    proposer: LLMProposer | None = None,
    *,
    instructions: str = "",
    max_fixes: int = 3,
) -> TriageReport:
    """Condense the cell's error and, with a model, propose fixes (unverified: see module doc).

    A provider failure does not fail the triage: the offline report comes back with
    ``provider_error`` set.
    """
    cell = next((c for c in notebook.cells if c.id == cell_id), None)
    if cell is None:
        raise CellError(f"No cell with id {cell_id!r} in {notebook.path}.")
    condensed = condense_error(cell.outputs)
    report = TriageReport(
        notebook_path=notebook.path,
        cell_id=cell_id,
        error=condensed,
        likely_cause=condensed.likely_cause or "No error in this cell's outputs.",
    )
    if proposer is None or not condensed.found:
        return report
    from .models import ExplorationKind, ProposeRequest

    request = ProposeRequest(
        notebook=notebook,
        cell_id=cell_id,
        kind=ExplorationKind.FIX,
        instructions=instructions,
        max_proposals=max_fixes,
    )
    try:
        cause, fixes = await proposer.propose_fixes(request)
    except ProviderError as exc:
        log.warning("Fix proposals unavailable: %s", exc)
        report.provider_error = str(exc)
        return report
    if cause:
        report.likely_cause = cause
        report.cause_source = "llm"
    report.fixes = fixes
    return report
