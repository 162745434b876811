"""The results file of a batch run (``--output``): one writer, and a file that proves
what it holds.

- **Lines.** One ``{"index", "output"}`` or ``{"index", "error"}`` JSON line per result;
  a record whose stream emitted several outputs writes ``"part": k, "of": n`` in each of
  its ``n`` lines, so a group cut short shows. Lines are valid UTF-8 whatever the data
  (a lone surrogate is written as its JSON escape).
- **Lock.** An exclusive ``flock`` on ``OUTPUT.lock`` for the whole run: the kernel drops
  it when the process dies (even by SIGKILL), so a stale lock file never blocks; a
  second run on the same output exits 2 naming the holder.
- **Sidecar.** ``OUTPUT.cxpar.json`` records the input the results belong to (path, size,
  SHA-256); ``--resume`` refuses an output written for other input.
- **Resume scan.** Every line is checked; torn or damaged lines and incomplete or
  duplicated groups are removed (the file is rewritten atomically when that is not
  just a cut at the end) and their records run again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .cost import BUDGET_ERROR

__all__ = ["BatchFileError", "OutputLock", "Scan", "check_input_file", "check_not_input",
           "escape_surrogates", "json_text", "result_lines", "scan_output", "sidecar_check",
           "sidecar_write"]

SIDECAR_SUFFIX = ".cxpar.json"
LOCK_SUFFIX = ".lock"
_SURROGATE = re.compile("[\ud800-\udfff]")
_INDEX = re.compile(rb'^\{"index": (\d+)')


class BatchFileError(Exception):
    """The output file cannot be used as asked (a usage error: exit 2)."""


# ---------------------------------------------------------------- lines

def escape_surrogates(json_text: str) -> str:
    """JSON text with lone surrogates (which UTF-8 cannot hold, so no file can) written as
    their ``\\udXXX`` escapes: the same JSON value, always valid UTF-8."""
    if _SURROGATE.search(json_text):
        json_text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json_text)
    return json_text


def json_text(value: Any) -> str:
    """``value`` as one line of JSON that is always valid UTF-8."""
    return escape_surrogates(json.dumps(value, ensure_ascii=False))


def result_lines(index: int, outputs: Sequence[str], error: dict[str, Any] | None) -> str:
    """The lines of one record (``outputs``: JSON texts from :func:`json_text`)."""
    if error is not None:
        extra = f', "partial": [{", ".join(outputs)}]' if outputs else ""
        return f'{{"index": {index}, "error": {json_text(error)}{extra}}}\n'
    if not outputs:
        return f'{{"index": {index}, "output": null}}\n'
    if len(outputs) == 1:
        return f'{{"index": {index}, "output": {outputs[0]}}}\n'
    n = len(outputs)
    return "".join(f'{{"index": {index}, "part": {k}, "of": {n}, "output": {o}}}\n'
                   for k, o in enumerate(outputs, 1))


# ---------------------------------------------------------------- input file

def check_input_file(input_path: str) -> None:
    """Refuse an input that is missing or not a regular file (BatchFileError).

    A batch reads its input more than once (to count the records for the progress
    display, to fingerprint it for ``--resume``, to run the records; Ray workers read it
    again), so a pipe, ``<(…)`` or a device, which can be read only once, is refused
    with that reason rather than half-run."""
    try:
        mode = os.stat(input_path).st_mode
    except FileNotFoundError:
        raise BatchFileError(f"no such input file: `{input_path}`") from None
    except OSError as exc:
        raise BatchFileError(f"cannot read input file `{input_path}`: "
                             f"{exc.strerror or exc}") from None
    if stat.S_ISREG(mode):
        return
    kind = ("a directory" if stat.S_ISDIR(mode) else
            "a pipe" if stat.S_ISFIFO(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "a device")
    raise BatchFileError(
        f"input `{input_path}` is {kind}, not a regular file; --input needs a regular "
        "file because a batch reads it more than once (to count, fingerprint for "
        "--resume and run the records); save the records to a file first, e.g. "
        "`... > records.jsonl`")


# ---------------------------------------------------------------- input != output

def check_not_input(input_path: str, output_path: str) -> None:
    """Refuse an output that is the input file (same path, a symlink or a hard link)."""
    try:
        same = os.path.samefile(input_path, output_path)
    except OSError:  # the output does not exist yet
        same = os.path.realpath(input_path) == os.path.realpath(output_path)
    if same:
        raise BatchFileError(f"--output `{output_path}` is the input file `{input_path}` "
                             "(writing results there would destroy the records); choose "
                             "another --output")


# ---------------------------------------------------------------- lock

class OutputLock:
    """An exclusive ``flock`` on ``OUTPUT.lock`` (see the module docstring)."""

    def __init__(self, output: str) -> None:
        self.output = output
        self.path = output + LOCK_SUFFIX
        self.fd: int | None = None

    def acquire(self) -> OutputLock:
        import fcntl

        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise BatchFileError(f"cannot create the lock file `{self.path}`: "
                                     f"{exc.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _holder(fd)
                os.close(fd)
                raise BatchFileError(
                    f"`{self.output}` is being written by another cxpar run ({holder}); "
                    "wait for it to finish or choose another --output") from None
            try:  # the file we locked must still be the one at the path
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except OSError:
                same = False
            if same:
                break
            os.close(fd)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)  # closing drops the flock
        self.fd = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "a process holds its lock"
    return (f"pid {info.get('pid')} on {info.get('host', '?')}, started "
            f"{info.get('started', '?')}")


# ---------------------------------------------------------------- sidecar

def _fingerprint(path: str) -> dict[str, Any]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return {"input": os.path.realpath(path), "size": size, "sha256": h.hexdigest()}


def sidecar_write(output: str, input_path: str) -> None:
    """Record (atomically) which input ``output`` holds results for."""
    data = {"cxpar_batch": 1, **_fingerprint(input_path)}
    path = output + SIDECAR_SUFFIX
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def sidecar_check(output: str, input_path: str) -> str | None:
    """For ``--resume``: refuse (BatchFileError) an output written for another input.

    Returns a note to show (the input moved but its content is the same), else None.
    An output that is missing or empty belongs to nothing yet: its sidecar is written.
    """
    try:
        empty = os.path.getsize(output) == 0
    except OSError:
        empty = True
    if empty:
        sidecar_write(output, input_path)
        return None
    path = output + SIDECAR_SUFFIX
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
        if not isinstance(meta, dict) or meta.get("cxpar_batch") != 1:
            raise ValueError("not a cxpar batch sidecar")
    except FileNotFoundError:
        raise BatchFileError(
            f"cannot --resume `{output}`: nothing records which input it was written for "
            f"(`{path}` is missing); run without --resume to start over, or choose "
            "another --output") from None
    except (OSError, ValueError) as exc:
        raise BatchFileError(f"cannot --resume `{output}`: `{path}` is unreadable ({exc});"
                             " run without --resume to start over") from None
    now = _fingerprint(input_path)
    if (meta.get("size"), meta.get("sha256")) != (now["size"], now["sha256"]):
        raise BatchFileError(
            f"cannot --resume `{output}`: it holds results for `{meta.get('input')}` "
            f"({meta.get('size')} bytes, sha256 {str(meta.get('sha256'))[:12]}…), but "
            f"`{input_path}` is {now['size']} bytes, sha256 {now['sha256'][:12]}…; "
            "resume with that input, run without --resume to start over, or choose "
            "another --output")
    if meta.get("input") != now["input"]:
        sidecar_write(output, input_path)
        return (f"`{output}` was written for `{meta.get('input')}`; `{input_path}` has the "
                "same content, resuming")
    return None


# ---------------------------------------------------------------- resume scan

@dataclass
class Scan:
    """What ``--resume`` found in an output file."""

    done: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    #: One line per problem found (damaged lines, incomplete or repeated groups).
    problems: list[str] = field(default_factory=list)
    #: Records whose lines were removed and that run again.
    redo: set[int] = field(default_factory=set)
    #: Records a budget stopped (``budget_exceeded``): removed, they run again.
    budget: set[int] = field(default_factory=set)


@dataclass
class _Line:
    start: int
    end: int
    lineno: int
    obj: dict[str, Any] | None
    index: int | None
    why: str = ""


def _parse(raw: bytes, lineno: int, start: int, end: int) -> _Line:
    m = _INDEX.match(raw)
    idx = int(m.group(1)) if m else None
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return _Line(start, end, lineno, None, idx, "not valid UTF-8")
    except ValueError:
        return _Line(start, end, lineno, None, idx, "not valid JSON")
    ok = isinstance(obj, dict) and type(obj.get("index")) is int and obj["index"] >= 0 \
        and (("output" in obj) != ("error" in obj))
    if ok and ("part" in obj or "of" in obj):
        part, of = obj.get("part"), obj.get("of")
        ok = type(part) is int and type(of) is int and 1 <= part <= of and "output" in obj
    if not ok:
        return _Line(start, end, lineno, None, idx, "not a result line")
    return _Line(start, end, lineno, obj, obj["index"])


def scan_output(path: str) -> Scan:
    """Check every line of ``path``; remove what is damaged or incomplete (rewriting the
    file atomically, or cutting its end) so that each record's complete group is there
    exactly once, and say which records are done."""
    scan = Scan()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return scan
    lines: list[_Line] = []
    pos = 0
    lineno = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        lineno += 1
        if nl < 0:  # no newline: the run stopped while writing this line
            line = _Line(pos, len(data), lineno, None, None, "cut off (no newline)")
            m = _INDEX.match(data[pos:])
            line.index = int(m.group(1)) if m else None
            lines.append(line)
            break
        raw = data[pos:nl]
        if raw.strip():
            lines.append(_parse(raw, lineno, pos, nl + 1))
        pos = nl + 1
    # group consecutive lines of one index (a group is written with one write call)
    keep: list[_Line] = []
    i = 0
    while i < len(lines):
        j = i + 1
        if lines[i].index is not None:
            while j < len(lines) and lines[j].index == lines[i].index:
                j += 1
        group = lines[i:j]
        i = j
        why = _group_problem(group)
        idx = group[0].index
        if why is None and idx is not None and idx in scan.done:
            why = "written twice (this copy removed)"
            _note(scan, group, why)
            continue
        if why is not None:
            _note(scan, group, why)
            if idx is not None and idx not in scan.done:
                scan.redo.add(idx)
            continue
        assert idx is not None
        error = group[0].obj.get("error")  # type: ignore[union-attr]
        if isinstance(error, dict) and error.get("type") == BUDGET_ERROR:
            scan.budget.add(idx)  # a budget stopped it: removed, and it runs again
            continue
        scan.done.add(idx)
        if "error" in group[0].obj:  # type: ignore[operator]
            scan.failed.add(idx)
        keep.extend(group)
    scan.redo -= scan.done
    scan.budget -= scan.done
    removed = [ln for ln in lines if ln not in keep]
    if removed:
        _rewrite(path, data, keep, removed)
    return scan


def _group_problem(group: list[_Line]) -> str | None:
    bad = next((ln for ln in group if ln.obj is None), None)
    if bad is not None:
        return bad.why
    first = group[0].obj
    assert first is not None
    if "of" not in first:
        return None if len(group) == 1 else "written more than once"
    of = first["of"]
    parts = [ln.obj.get("part") for ln in group if ln.obj is not None]
    if any(ln.obj is not None and ln.obj.get("of") != of for ln in group):
        return "its parts disagree on how many there are"
    if parts != list(range(1, of + 1)):
        return f"incomplete: {len(parts)} of its {of} lines"
    return None


def _note(scan: Scan, group: list[_Line], why: str) -> None:
    first, last = group[0].lineno, group[-1].lineno
    where = f"line {first}" if first == last else f"lines {first}-{last}"
    who = f"record {group[0].index}" if group[0].index is not None else "an unknown record"
    scan.problems.append(f"{where} ({who}): {why}")


def _rewrite(path: str, data: bytes, keep: list[_Line], removed: list[_Line]) -> None:
    cut = min(ln.start for ln in removed)
    if not keep or max(ln.end for ln in keep) <= cut:
        # everything removed is at the end: cut the file there (as a torn last line)
        with open(path, "r+b") as f:
            f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())
        return
    tmp = path + ".resume.tmp"
    with open(tmp, "wb") as f:
        for ln in keep:
            f.write(data[ln.start:ln.end])
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
