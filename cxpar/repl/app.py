"""The interactive front end of `cxpar repl` on prompt_toolkit (imported only on a TTY)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion, PathCompleter
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.lexers import PygmentsLexer

from cxpar.repl.lexer import CONSTANTS, KEYWORDS, RESERVED, CxLexer
from cxpar.repl.session import Session, balanced, history_path, is_complete, open_brackets

PROMPT = "cx> "
CONTINUATION = "... "
COMMANDS = (":help", ":ast", ":graph", ":load", ":reset", ":clock", ":provider", ":stats",
            ":quit")

_WORD = re.compile(r"[A-Za-z_$:][\w$.]*$")
_LOAD = re.compile(r"^\s*:load\s+(?P<path>.*)$", re.S)
INDENT = "    "


def _cx_or_dir(name: str) -> bool:
    import os

    return os.path.isdir(name) or name.endswith(".cx")


class CxCompleter(Completer):
    """Keywords, services, builtins, declared entities, variables and known event names."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.paths = PathCompleter(expanduser=True, file_filter=_cx_or_dir)

    def get_completions(self, document: Document,
                        complete_event: CompleteEvent) -> Iterable[Completion]:
        before = document.text_before_cursor
        load = _LOAD.match(before)
        if load is not None:  # `:load <Tab>`: directories and .cx files
            path = load.group("path")
            yield from self.paths.get_completions(Document(path, len(path)), complete_event)
            return
        m = _WORD.search(before)
        if m is None:
            return
        word = m.group(0)
        if word.startswith(":"):
            if before.strip() != word:
                return
            candidates: Iterable[str] = COMMANDS
        else:
            candidates = sorted(set(KEYWORDS) | set(CONSTANTS) | set(RESERVED)
                                | set(self.session.words()) | {"this", "self"})
        for c in candidates:
            if c.startswith(word) and c != word:
                yield Completion(c, start_position=-len(word))


def make_history() -> History:
    """The history file in the user's data directory (in memory if it cannot be made)."""
    path = history_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
        return FileHistory(str(path))
    except OSError:
        return InMemoryHistory()


def key_bindings() -> KeyBindings:
    kb = KeyBindings()

    @kb.add("enter")
    def _enter(event: KeyPressEvent) -> None:
        buf = event.current_buffer
        text = buf.text
        last_line_blank = "\n" in text and not buf.document.current_line.strip()
        if buf.document.is_cursor_at_the_end and (
                is_complete(text) or (last_line_blank and balanced(text))):
            buf.validate_and_handle()
        else:
            buf.insert_text("\n" + indent_for(buf.document.text_before_cursor))

    @kb.add("}")
    def _close(event: KeyPressEvent) -> None:
        buf = event.current_buffer
        line = buf.document.current_line_before_cursor
        if line.endswith(INDENT) and not line.strip():
            buf.delete_before_cursor(len(INDENT))  # `}` on its own line: one level out
        buf.insert_text("}")

    @kb.add("escape", "enter")
    def _force(event: KeyPressEvent) -> None:
        event.current_buffer.validate_and_handle()

    return kb


def indent_for(text: str) -> str:
    """The indentation of a new line after ``text``: one level per open bracket."""
    return INDENT * open_brackets(text)


def run_interactive(session: Session) -> int:
    """Prompt, run, repeat until `:quit` or Ctrl-D; errors never leave the loop."""
    prompt: PromptSession[str] = PromptSession(
        history=make_history(), lexer=PygmentsLexer(CxLexer),
        completer=CxCompleter(session), complete_while_typing=False, multiline=True,
        key_bindings=key_bindings(), prompt_continuation=lambda width, n, soft: CONTINUATION,
        enable_history_search=False)
    print("cxpar repl — `:help` for commands, Ctrl-D to leave", file=sys.stderr)
    while not session.quit:
        try:
            text = prompt.prompt(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        stripped = text.strip()
        if not stripped:
            continue
        try:
            if stripped.startswith(":"):
                session.command(stripped)
            else:
                session.execute(text)
        except KeyboardInterrupt:
            session.err.write("interrupted\n")
        except Exception as exc:  # noqa: BLE001 - errors never leave the REPL
            session.err.write(f"error: internal error: {exc!r}\n   = note: this is a bug "
                              "in cxpar; please report it\n")
    session.close()
    return 0
