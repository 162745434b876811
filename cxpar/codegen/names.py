"""The one mangler for every Python name a generated module uses.

CX identifiers (``[A-Za-z_$][A-Za-z0-9_$]*``), event names and entity names are
user-controlled; the code generator also needs names of its own (``rt``, ``_v``,
temporaries, handler functions ...). Every name that appears in a generated module
comes from one :class:`Mangler`, which hands out each name at most once per module and
never one of its reserved names (the generator's fixed names, Python keywords and
builtins). So no two generated names can clash, whatever the user wrote, and a user
name can never become Python syntax: the readable hint is reduced to ASCII letters,
digits and ``_`` and the table, not the spelling, makes it unique.

User *text* (strings, file names, keys, event names) never becomes a name at all: it
reaches generated code as ``ast.Constant`` nodes, i.e. through ``repr``.
"""

from __future__ import annotations

import builtins
import keyword
from collections.abc import Hashable, Iterable

#: Names the generator writes itself (parameters, module aliases, tables, the
#: standalone entry point). None of them is ever handed out by :meth:`Mangler.fresh`.
FIXED = frozenset({
    "rt", "cx_self", "_event", "_v", "_s", "G",
    "__cx_program__", "__cx_main__", "__cx_file__", "__cx_spans__", "__cx_source__",
    "__name__", "__doc__", "__builtins__", "sys", "main",
    "__cx_native__", "__cx_factory__", "__cx_loops_ir__", "__cx_loop_symbols__",
    "bind", "load_loops",
})

RESERVED = frozenset(FIXED | set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins)))


def sanitize(hint: str) -> str:
    """``hint`` as a Python identifier of ASCII letters, digits and ``_``."""
    out = "".join(c if (c.isascii() and c.isalnum()) or c == "_" else "_" for c in hint)
    if not out or out[0].isdigit():
        out = "_" + out
    return out


class Mangler:
    """Hands out unique Python names for one generated module.

    :meth:`fresh` never returns the same name twice nor a reserved one; :meth:`of` gives
    the name of a *thing* (a variable binding, a global) and the same name every time.
    """

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self.used: set[str] = set(RESERVED) | set(reserved)
        self._names: dict[Hashable, str] = {}

    def fresh(self, hint: str) -> str:
        """A new name that looks like ``hint`` and was never handed out before."""
        base = sanitize(hint)
        name, k = base, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    def of(self, key: Hashable, hint: str) -> str:
        """The name of ``key`` (its first call mints it from ``hint``)."""
        got = self._names.get(key)
        if got is None:
            got = self._names[key] = self.fresh(hint)
        return got
