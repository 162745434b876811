"""Helpers for the resilience tests (virtual clock, seeded)."""

from __future__ import annotations

from tests.runtime.conftest import Result, run
from tests.semantics.conftest import run_cx

__all__ = ["Result", "run", "run_cx"]
