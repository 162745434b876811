"""A small Wadler/Prettier document printer.

A document is text (a ``str`` without newlines, or a verbatim multi-line comment), a
:class:`Concat`, a :class:`Group` (printed flat if it fits in the remaining width,
else broken), an :class:`Indent`, a :class:`Line` (a space or nothing when its group
is flat, a newline when broken; hard lines always break) or an :class:`IfBreak`. A
document that contains a hard line is ``hard``: every group around it breaks.

:func:`render` is Prettier's one fitting pass, iterative (no recursion), with two
rules of its own that make comments easy to place: consecutive line breaks merge into
one (keeping a blank line if any asked for one, and the last indentation), and
whitespace-only text at the start of a line or after a space is dropped.
"""

from __future__ import annotations

from typing import Any, TypeAlias

INDENT = 4


class Doc:
    """Base of document nodes; ``hard`` is true when it contains a hard line break."""

    __slots__ = ("hard",)

    def __init__(self, hard: bool) -> None:
        self.hard = hard


DocLike: TypeAlias = "Doc | str"


def _is_hard(d: DocLike) -> bool:
    return d.hard if isinstance(d, Doc) else False


class Concat(Doc):
    __slots__ = ("parts",)

    def __init__(self, parts: list[DocLike], hard: bool | None = None) -> None:
        if hard is None:
            hard = False
            for p in parts:
                if type(p) is not str and p.hard:  # type: ignore[union-attr]
                    hard = True
                    break
        self.hard = hard
        self.parts = parts


class Group(Doc):
    """Flat if the whole group fits on the rest of the line, else broken."""

    __slots__ = ("body",)

    def __init__(self, body: DocLike) -> None:
        super().__init__(_is_hard(body))
        self.body = body


class Indent(Doc):
    __slots__ = ("body",)

    def __init__(self, body: DocLike) -> None:
        super().__init__(_is_hard(body))
        self.body = body


class Line(Doc):
    """A possible line break: ``flat`` is printed instead when the group fits."""

    __slots__ = ("flat", "blank")

    def __init__(self, flat: str, hard: bool = False, blank: bool = False) -> None:
        super().__init__(hard)
        self.flat = flat
        self.blank = blank


class IfBreak(Doc):
    """``broken`` when the enclosing group is broken, else ``flat``."""

    __slots__ = ("broken", "flat")

    def __init__(self, broken: DocLike, flat: DocLike = "") -> None:
        super().__init__(_is_hard(broken) or _is_hard(flat))
        self.broken = broken
        self.flat = flat


class Fill(Doc):
    """``content, separator, content, …``: each separator (a line) breaks only when the
    content after it does not fit on the current line (Prettier's ``fill``)."""

    __slots__ = ("parts",)

    def __init__(self, parts: list[DocLike]) -> None:
        super().__init__(any(_is_hard(p) for p in parts))
        self.parts = parts


class _FillRest:
    """The parts of a :class:`Fill` from ``at`` on (the printer's cursor into it)."""

    __slots__ = ("parts", "at")

    def __init__(self, parts: list[DocLike], at: int) -> None:
        self.parts = parts
        self.at = at


class Verbatim(Doc):
    """Text that may contain newlines (a multi-line block comment), printed as is."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        super().__init__(True)
        self.text = text


LINE = Line(" ")
SOFTLINE = Line("")
HARDLINE = Line("", hard=True)
BLANKLINE = Line("", hard=True, blank=True)


def concat(*parts: DocLike) -> Doc:
    return Concat(list(parts))


def join(sep: DocLike, items: list[DocLike]) -> list[DocLike]:
    out: list[DocLike] = []
    for i, item in enumerate(items):
        if i:
            out.append(sep)
        out.append(item)
    return out


_FLAT, _BREAK = 0, 1


def _fits(doc: Any, rest: list[tuple[int, int, Any]], width: int,
          must_be_flat: bool = False) -> bool:
    """Whether ``doc`` printed flat, then ``rest`` up to its first line break, fits."""
    cmds: list[tuple[int, Any]] = [(_FLAT, doc)]
    rest_i = len(rest)
    while width >= 0:
        if not cmds:
            if rest_i == 0:
                return True
            rest_i -= 1
            _, mode, d = rest[rest_i]
            cmds.append((mode, d))
            continue
        mode, d = cmds.pop()
        if type(d) is str:
            width -= len(d)
        elif type(d) is Concat:
            for p in reversed(d.parts):
                cmds.append((mode, p))
        elif type(d) is Group:
            if must_be_flat and d.hard:
                return False
            cmds.append((_BREAK if d.hard else mode, d.body))
        elif type(d) is Fill:
            for p in reversed(d.parts):
                cmds.append((mode, p))
        elif type(d) is _FillRest:
            for p in reversed(d.parts[d.at:]):
                cmds.append((mode, p))
        elif type(d) is Indent:
            cmds.append((mode, d.body))
        elif type(d) is Line:
            if mode == _BREAK or d.hard:
                return True
            width -= len(d.flat)
        elif type(d) is IfBreak:
            cmds.append((mode, d.broken if mode == _BREAK else d.flat))
        elif type(d) is Verbatim:
            width -= len(d.text.split("\n", 1)[0])
            return width >= 0
    return False


def render(doc: DocLike, width: int = 100) -> str:
    """Print ``doc`` in at most ``width`` columns where it can."""
    out: list[str] = []
    pos = 0
    at_bol = True          # nothing but indentation since the last line break
    newline_at = -1        # index in ``out`` of the last line break's chunk (-1: none yet)
    blank = False          # that line break already includes a blank line
    remeasure = False      # a hard break inside flat content: measure the next group again
    stack: list[tuple[int, int, Any]] = [(0, _BREAK, doc)]
    while stack:
        ind, mode, d = stack.pop()
        if type(d) is str:
            if not d.strip() and (at_bol or (out and out[-1].endswith(" "))):
                continue  # no indentation-only text, no double spaces
            out.append(d)
            pos += len(d)
            at_bol = False
        elif type(d) is Concat:
            for p in reversed(d.parts):
                stack.append((ind, mode, p))
        elif type(d) is Group:
            if d.hard:
                stack.append((ind, _BREAK, d.body))
            elif mode == _FLAT and not remeasure:
                stack.append((ind, _FLAT, d.body))
            else:
                remeasure = False
                flat = _fits(d.body, stack, width - pos)
                stack.append((ind, _FLAT if flat else _BREAK, d.body))
        elif type(d) is Indent:
            stack.append((ind + INDENT, mode, d.body))
        elif type(d) is Fill or type(d) is _FillRest:
            parts, at = (d.parts, 0) if type(d) is Fill else (d.parts, d.at)  # type: ignore[union-attr]
            n = len(parts) - at
            if n <= 0:
                continue
            rem = width - pos
            content = parts[at]
            content_fits = _fits(content, [], rem, True)
            if n == 1:
                stack.append((ind, _FLAT if content_fits else _BREAK, content))
                continue
            sep = parts[at + 1]
            if n == 2:
                mode2 = _FLAT if content_fits else _BREAK
                stack.append((ind, mode2, sep))
                stack.append((ind, mode2, content))
                continue
            pair_fits = _fits(Concat([content, sep, parts[at + 2]]), [], rem, True)
            stack.append((ind, mode, _FillRest(parts, at + 2)))
            stack.append((ind, _FLAT if pair_fits else _BREAK, sep))
            stack.append((ind, _FLAT if content_fits else _BREAK, content))
        elif type(d) is Line:
            if mode == _FLAT and not d.hard:
                if d.flat and not at_bol and not out[-1].endswith(" "):
                    out.append(d.flat)
                    pos += len(d.flat)
                continue
            if mode == _FLAT:
                remeasure = True
            if at_bol:
                if newline_at < 0:
                    continue  # no line breaks before the first text
                blank = blank or d.blank
                out[newline_at] = ("\n\n" if blank else "\n") + " " * ind
                del out[newline_at + 1:]
            else:
                while out and out[-1].endswith(" "):
                    out[-1] = out[-1].rstrip(" ")
                    if not out[-1]:
                        out.pop()
                    else:
                        break
                blank = d.blank
                out.append(("\n\n" if blank else "\n") + " " * ind)
                newline_at = len(out) - 1
            pos = ind
            at_bol = True
        elif type(d) is IfBreak:
            stack.append((ind, mode, d.broken if mode == _BREAK else d.flat))
        elif type(d) is Verbatim:
            out.append(d.text)
            last = d.text.rfind("\n")
            pos = pos + len(d.text) if last < 0 else len(d.text) - last - 1
            at_bol = False
        else:  # pragma: no cover - a bug in a printer rule
            raise TypeError(f"not a document: {d!r}")
    return "".join(out)
