"""The Python API: compile a CX program once, run it as isolated streams.

>>> import cxpar
>>> program = cxpar.load('on input.record (e) { emit output.record { twice: e.n * 2 }; }')
>>> program.run_sync({"n": 21}, clock="virtual").output
{'twice': 42}

See docs/api.md. ``cxpar run`` and ``cxpar serve`` are built on this API.
"""

from __future__ import annotations

from cxpar.journal.schema import JournalError
from cxpar.runtime.settings import ProviderSettings, RunSettings, SettingsError

from .program import CompileError, Program, load
from .result import RunResult
from .session import Runtime

__all__ = ["CompileError", "JournalError", "Program", "ProviderSettings", "RunResult",
           "RunSettings", "Runtime", "SettingsError", "load"]
