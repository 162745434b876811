"""Golden tests of CX programs (``cxpar test``).

A test is a ``NAME.cx`` with a golden ``NAME.out`` next to it: the program's expected
stdout. Optional files with the same stem:

- ``NAME.code``: the expected exit code (absent: 0);
- ``NAME.jsonl``: input records: the test is a batch run (``--input``), its result lines
  are the stdout;
- ``NAME.journal``: a journal to replay (``--replay``): the program runs against
  recorded model answers, and any call not in the journal fails as ``not_recorded``;
- ``NAME.args``: more ``cxpar run`` options (shell words; ``#`` starts a comment).

Each test runs ``cxpar run --clock virtual [args] FILE`` in the program's directory, in a
fresh process, with the environment's provider settings (``CXPAR_*``) removed so a
golden never depends on the shell that runs it (``cxpar.toml`` still applies).
"""

from __future__ import annotations

import difflib
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Case", "Outcome", "discover", "run_case", "compare", "update"]

#: Environment variables a test keeps (everything else named ``CXPAR_*`` is dropped).
KEEP_ENV = frozenset({"CXPAR_DEBUG", "CXPAR_GC"})
#: Lines of a failing test's stderr shown under its diff.
STDERR_TAIL = 15
#: Longest diff shown for one test (lines).
MAX_DIFF = 200


class GoldenError(Exception):
    """A path that holds no tests (a usage error)."""


@dataclass(frozen=True)
class Case:
    """One golden test: ``program`` (a ``.cx`` file) and its companions."""

    program: Path
    shown: str

    def companion(self, ext: str) -> Path:
        return self.program.with_suffix(ext)

    @property
    def golden(self) -> Path:
        return self.companion(".out")

    def expected_code(self) -> int:
        p = self.companion(".code")
        if not p.exists():
            return 0
        text = p.read_text(encoding="utf-8").strip()
        try:
            return int(text)
        except ValueError:
            raise GoldenError(f"`{p}` must hold an exit code, got {text[:40]!r}") from None

    def extra_args(self) -> list[str]:
        p = self.companion(".args")
        if not p.exists():
            return []
        try:
            return shlex.split(p.read_text(encoding="utf-8"), comments=True)
        except ValueError as exc:
            raise GoldenError(f"`{p}`: {exc}") from None

    def command(self) -> list[str]:
        """``cxpar run`` for this test, to run in the program's directory."""
        args = [sys.executable, "-P", "-m", "cxpar", "run", "--clock", "virtual"]
        if self.companion(".jsonl").exists():
            args += ["--input", self.companion(".jsonl").name, "--no-progress"]
        if self.companion(".journal").exists():
            args += ["--replay", self.companion(".journal").name]
        return [*args, *self.extra_args(), self.program.name]


@dataclass
class Outcome:
    """What one test run did."""

    case: Case
    code: int
    stdout: str
    stderr: str
    problem: str | None = None  # the test could not run (timed out, bad companion file)


def discover(paths: Sequence[str], *, update: bool = False) -> list[Case]:
    """The tests under ``paths``: directories are searched (recursively, skipping
    hidden ones) for ``.cx`` files with a golden; files are taken as given (with
    ``update``, a missing golden is created)."""
    cases: list[Case] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for q in sorted(p.rglob("*.cx")):
                rel = q.relative_to(p).parts
                if any(part.startswith(".") or part == "__pycache__" for part in rel[:-1]):
                    continue
                if q.is_file() and q.with_suffix(".out").exists():
                    cases.append(Case(q, str(q)))
        elif not p.exists():
            raise GoldenError(f"no such file or directory: `{raw}`")
        elif p.suffix != ".cx":
            raise GoldenError(f"`{raw}` is not a CX program (a `.cx` file)")
        else:
            cases.append(Case(p, raw))
    if not cases:
        raise GoldenError(f"no tests under {', '.join(f'`{p}`' for p in paths)} (a test "
                          "is a NAME.cx with its expected output in NAME.out next to it; "
                          "`cxpar test --update NAME.cx` creates one)")
    return cases


def run_case(case: Case, *, timeout_s: float = 120.0) -> Outcome:
    """Run one test in a fresh ``cxpar`` process."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CXPAR_") or k in KEEP_ENV}
    try:
        cmd = case.command()
    except GoldenError as exc:
        return Outcome(case, -1, "", "", str(exc))
    try:
        proc = subprocess.run(cmd, cwd=case.program.parent or Path("."), env=env,
                              capture_output=True, text=True, encoding="utf-8",
                              errors="replace", timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) \
            else exc.stderr or ""
        return Outcome(case, -1, "", err, f"did not finish within {timeout_s:g} s")
    return Outcome(case, proc.returncode, proc.stdout, proc.stderr)


def compare(out: Outcome) -> list[str]:
    """Why a test failed, as lines (a diff, the exit codes, stderr); [] if it passed."""
    case = out.case
    if out.problem is not None:
        return [out.problem, *_tail(out.stderr)]
    if not case.golden.exists():
        return [f"no golden `{case.golden.name}` (run `cxpar test --update {case.shown}` "
                "to create it)"]
    try:
        want_code = case.expected_code()
    except GoldenError as exc:
        return [str(exc)]
    want = case.golden.read_text(encoding="utf-8")
    lines: list[str] = []
    if out.stdout != want:
        diff = list(difflib.unified_diff(
            want.splitlines(keepends=True), out.stdout.splitlines(keepends=True),
            fromfile=f"{case.golden.name} (expected)", tofile="stdout (actual)"))
        if len(diff) > MAX_DIFF:
            diff = diff[:MAX_DIFF] + [f"… {len(diff) - MAX_DIFF} more diff lines\n"]
        lines += [d.rstrip("\n") if d.endswith("\n") else d + "  (no newline at end)"
                  for d in diff]
    if out.code != want_code:
        lines.append(f"exit code {out.code}, expected {want_code}")
    if lines:
        lines += _tail(out.stderr)
    return lines


def update(out: Outcome) -> bool:
    """Rewrite the test's golden files from ``out``; True if anything changed."""
    case = out.case
    changed = False
    golden = case.golden
    if not golden.exists() or golden.read_text(encoding="utf-8") != out.stdout:
        golden.write_text(out.stdout, encoding="utf-8", newline="")
        changed = True
    code_file = case.companion(".code")
    old = code_file.read_text(encoding="utf-8").strip() if code_file.exists() else "0"
    if old != str(out.code):
        if out.code == 0:
            code_file.unlink()
        else:
            code_file.write_text(f"{out.code}\n", encoding="utf-8")
        changed = True
    return changed


def _tail(stderr: str) -> list[str]:
    lines = stderr.rstrip("\n").splitlines()
    if not lines:
        return []
    shown = lines[-STDERR_TAIL:]
    head = "stderr:" if len(shown) == len(lines) else f"stderr (last {len(shown)} lines):"
    return [head, *("  " + s for s in shown)]
