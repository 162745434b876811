"""The Python API misused: every wrong type or unknown name raises a TypeError /
ValueError / SettingsError whose message names the argument — never an AttributeError
or an error from deep inside cxpar."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Callable
from typing import Any

import pytest

import cxpar

SOURCE = "/// @external\non input.record (e) { print(e); }\n"


def _program() -> cxpar.Program:
    return cxpar.load(SOURCE, name="p.cx")


async def _run_async(**kwargs: Any) -> Any:
    return await _program().run({"a": 1}, **kwargs)


CASES: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    ("load int", lambda: cxpar.load(5), TypeError, "cxpar.load() takes a path"),
    ("load None", lambda: cxpar.load(None), TypeError, "got NoneType"),
    ("load bytes", lambda: cxpar.load(b"print(1);"), TypeError, "got bytes"),
    ("load name", lambda: cxpar.load(SOURCE, name=5), TypeError, "name="),
    ("load backend type", lambda: cxpar.load(SOURCE, backend=1), TypeError, "backend="),
    ("load backend value", lambda: cxpar.load(SOURCE, backend="rust"), ValueError,
     "backend must be python or llvm"),
    ("load services int", lambda: cxpar.load(SOURCE, services=5), TypeError, "services="),
    ("load services values", lambda: cxpar.load(SOURCE, services={"x": 5}), TypeError,
     "services="),
    ("run_sync settings int", lambda: _program().run_sync({}, 5), TypeError,
     "settings must be a cxpar.RunSettings, got int"),
    ("run_sync settings dict", lambda: _program().run_sync({}, settings={"clock": "x"}),
     TypeError, "got dict"),
    ("run_sync unknown", lambda: _program().run_sync({}, bogus=1), TypeError,
     "unknown setting `bogus`"),
    ("run settings", lambda: asyncio.run(_run_async(settings=[1])), TypeError,
     "settings must be a cxpar.RunSettings"),
    ("run unknown", lambda: asyncio.run(_run_async(clok="virtual")), TypeError,
     "unknown setting `clok`"),
    ("main settings", lambda: _program().main(5), TypeError,
     "settings must be a cxpar.RunSettings"),
    ("Runtime settings", lambda: cxpar.Runtime("virtual"), TypeError,
     "settings must be a cxpar.RunSettings, got str"),
    ("replace unknown", lambda: cxpar.RunSettings().replace(seeds=1), TypeError,
     "unknown setting `seeds`"),
    ("bad clock", lambda: _program().run_sync({}, clock="fast"), cxpar.SettingsError,
     "clock"),
    ("bad record", lambda: _program().run_sync({1, 2}, clock="virtual"), TypeError,
     "the record must be JSON data"),
    ("provider type", lambda: _program().run_sync({}, provider=5), TypeError, "provider="),
]


@pytest.mark.parametrize(("call", "error", "needle"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_misuse_raises_a_clear_error_naming_the_argument(
        call: Callable[[], Any], error: type[Exception], needle: str) -> None:
    with pytest.raises(error) as info:
        call()
    assert needle in str(info.value)
    assert not isinstance(info.value, AttributeError)
    # raised at the API's own guard, not from inside the stdlib or the runtime
    frames = [pathlib.Path(str(f.path)) for f in info.traceback]
    assert frames[-1].parts[-2] in ("api", "runtime", "tests"), frames[-1]
