"""Language features as plain functions of an :class:`~cxpar.lsp.analysis.Analysis`.

Each returns lsprotocol types; :mod:`cxpar.lsp.server` only wires them to requests.
"""

from __future__ import annotations

import re
from pathlib import Path

from lsprotocol import types as t

from cxpar import lang
from cxpar.ast import nodes as n
from cxpar.diagnostics.codes import explain
from cxpar.diagnostics.model import Diagnostic, Severity
from cxpar.lsp.analysis import Analysis
from cxpar.lsp.index import ENTITY, EVENT, SERVICE, VAR, Occurrence

SOURCE = "cxpar"

_SEVERITY = {Severity.ERROR: t.DiagnosticSeverity.Error,
             Severity.WARNING: t.DiagnosticSeverity.Warning,
             Severity.NOTE: t.DiagnosticSeverity.Information}

KEYWORDS = ("conscious", "object", "extends", "realize", "on", "async", "emit", "var", "if",
            "else", "while", "for", "in", "break", "continue", "return", "new", "this", "self",
            "true", "false", "null")


# ------------------------------------------------------------------ diagnostics


def explanations_uri() -> str:
    """Where `codeDescription` links point: docs/diagnostics.md in a checkout, else the
    same text written once to the user's cache directory."""
    here = Path(__file__).resolve().parents[2] / "docs" / "diagnostics.md"
    if not here.exists():
        from cxpar.diagnostics.codes import markdown

        cache = Path.home() / ".cache" / "cxpar"
        here = cache / "diagnostics.md"
        if not here.exists():
            cache.mkdir(parents=True, exist_ok=True)
            here.write_text(markdown(), encoding="utf-8")
    return here.as_uri()


def _anchor(d: Diagnostic) -> str:
    return d.code.lower()


def diagnostics(a: Analysis) -> list[t.Diagnostic]:
    """The document's diagnostics, with codes, related spans and explanation links."""
    base = explanations_uri()
    out: list[t.Diagnostic] = []
    for d in a.diagnostics:
        message = d.message + (f"\nhelp: {d.help}" if d.help else "")
        related = [t.DiagnosticRelatedInformation(
            location=t.Location(uri=a.uri, range=a.lines.range(lab.span)), message=lab.message)
            for lab in d.labels]
        out.append(t.Diagnostic(
            range=a.lines.range(d.span), message=message, severity=_SEVERITY[d.severity],
            code=d.code, code_description=t.CodeDescription(href=f"{base}#{_anchor(d)}"),
            source=SOURCE, related_information=related or None,
            data={"help": d.help or "", "label": d.label}))
    return out


# ------------------------------------------------------------ definition & refs


def _loc(a: Analysis, o: Occurrence) -> t.Location:
    return t.Location(uri=a.uri, range=a.lines.range(o.span))


def _subscribers(a: Analysis, event: str) -> list[Occurrence]:
    assert a.compilation is not None
    handlers = {id(h.node) for h in a.compilation.info.subscribers(event)}
    return [o for o in a.index.of_kind(EVENT, "on") if id(o.node) in handlers]


def definition(a: Analysis, offset: int) -> list[t.Location]:
    """Events go to the `on` handlers that subscribe; variables to their declaration;
    entity names (`new X`, bases) to the entity."""
    o = a.index.at(offset)
    if o is None or a.compilation is None:
        return []
    if o.kind == EVENT:
        if o.role == "on":
            return [_loc(a, o)]
        return [_loc(a, s) for s in _subscribers(a, o.name)]
    if o.kind == VAR:
        return [_loc(a, d) for d in a.index.same(o) if d.role == "decl"]
    if o.kind == ENTITY:
        return [_loc(a, d) for d in a.index.same(o) if d.role == "decl"]
    return []


def references(a: Analysis, offset: int, include_declaration: bool) -> list[t.Location]:
    """Every `emit`, `on`, handler parameter and `handlers` item of an event; every use
    of a variable or entity."""
    o = a.index.at(offset)
    if o is None or o.kind == SERVICE:
        return []
    found = a.index.same(o)
    if o.kind == EVENT and a.compilation is not None:
        found = found + [s for s in _subscribers(a, o.name) if s not in found]
    if not include_declaration:
        found = [f for f in found if f.role not in ("decl", "on")]
    return [_loc(a, f) for f in sorted(found, key=lambda f: f.start)]


# ------------------------------------------------------------------------ hover


def _line(a: Analysis, o: Occurrence) -> int:
    return o.span.line


def _event_hover(a: Analysis, o: Occurrence) -> str:
    assert a.compilation is not None
    subs = a.compilation.info.subscribers(o.name)
    lines = [f"**event** `{o.name}`", ""]
    if subs:
        lines.append(f"subscribers ({len(subs)}):")
        for h in subs:
            where = f"`{h.entity}`: " if h.entity else ""
            lines.append(f"- {where}`on {h.event}` (line {h.node.span.line})")
    else:
        lines.append("no subscriber")
    emitters = [e for e in a.index.same(o) if e.role in ("emit", "branch", "item")]
    stems = [c for c in a.compilation.info.call_list
             if o.name in (f"{c.stem}.complete", f"{c.stem}.error")]
    if emitters or stems:
        lines.append("")
        lines.append(f"emitters ({len(emitters) + len(stems)}):")
        words = {"emit": "`emit`", "branch": "parallel handler parameter",
                 "item": "`handlers` item"}
        for e in emitters:
            lines.append(f"- {words[e.role]} (line {_line(a, e)})")
        for c in stems:
            lines.append(f"- `{c.service}` call, when it completes (line {c.span.line})")
    return "\n".join(lines)


def _call_hover(a: Analysis, o: Occurrence) -> str:
    assert a.compilation is not None
    node = o.node
    assert isinstance(node, n.ServiceCall)
    ac = a.compilation.info.calls.get(id(node))
    if ac is None or ac.function_call:
        return f"`{o.name}`"
    lines = [f"**{ac.service}** service call" + ("" if ac.known else " (unknown service)"), ""]
    graph = a.compilation.graph
    own = total = None
    if graph is not None:
        for g in graph.nodes:
            if g.span == node.span and g.kind == "call":
                own, start = g.duration, g.start
            elif g.span == node.span and g.kind == "join" and own is not None:
                total = g.finish - start
    if own is not None:
        est = f"estimated latency: {own:g} ms"
        if total is not None and total != own:
            est += f" for the call, {total:g} ms with its branches (the slowest one)"
        lines.append(est)
    for b in ac.branches:
        subs = a.compilation.info.subscribers(b.event)
        lines.append(f"- branch `{b.key}: {b.event}` → {len(subs)} handler(s), result in "
                     f"`event.{b.key}`")
    for it in ac.items:
        lines.append(f"- then `handlers` item `{it.event}` (gets the result payload)")
    lines.append(f"- then `{ac.stem}.complete` (and `{ac.stem}.error` on failures)")
    return "\n".join(lines)


def hover(a: Analysis, offset: int) -> t.Hover | None:
    """Service calls (latency, branches, where results land), events (subscribers,
    emitters), variables, entities, and the explanation of a diagnostic's code."""
    o = a.index.at(offset)
    text = None
    if o is not None and a.compilation is not None:
        if o.kind == EVENT:
            text = _event_hover(a, o)
        elif o.kind == SERVICE:
            text = _call_hover(a, o)
        elif o.kind == VAR and o.binding is not None:
            b = o.binding
            text = f"**{b.kind.value}** `{b.name}` (declared on line {b.span.line})"
        elif o.kind == ENTITY:
            info = a.compilation.info.entities.get(o.name)
            if info is not None:
                text = f"**{info.decl.kind}** `{o.name}`" + (
                    f" : {', '.join(info.bases)}" if info.bases else "") + (
                    f"\n\n{info.decl.doc}" if info.decl.doc else "")
    for d in a.diagnostics:
        if d.span.start <= offset <= max(d.span.end, d.span.start + 1):
            explanation = explain(d.code)
            if explanation:
                block = f"**{d.code}**: {d.message}\n\n{explanation}"
                text = block if text is None else f"{text}\n\n---\n\n{block}"
            break
    if text is None:
        return None
    rng = a.lines.range(o.span) if o is not None else None
    return t.Hover(contents=t.MarkupContent(kind=t.MarkupKind.Markdown, value=text),
                   range=rng)


# ------------------------------------------------------------------- completion

_EVENT_CONTEXT = re.compile(r"\b(emit|on)\s+(async\s+)?[\w$.]*$|handlers\s*:\s*\[[^\]]*$")
_VALUE_CONTEXT = re.compile(r"([A-Za-z_$][\w$]*)\s*:\s*[\w$.]*$")
_KEY_CONTEXT = re.compile(r"[{,]\s*[\w$]*$")


def _service_object(text: str, offset: int, services: set[str]) -> bool:
    """Whether ``offset`` is directly inside the object literal of a service call."""
    depth = 0
    i = offset - 1
    while i >= 0:
        ch = text[i]
        if ch in ")]}":
            depth += 1
        elif ch in "([":
            if depth == 0:
                return False
            depth -= 1
        elif ch == "{":
            if depth == 0:
                word = re.search(r"([A-Za-z_$][\w$]*)\s*$", text[:i])
                return word is not None and word.group(1) in services
            depth -= 1
        i -= 1
    return False


def _event_names(a: Analysis | None) -> list[str]:
    if a is None or a.compilation is None:
        return []
    info = a.compilation.info
    return sorted(info.handled | info.emitted)


def completion(a: Analysis, text: str, offset: int) -> t.CompletionList:
    """Event names after `emit`/`on`, in handler parameters and `handlers:` lists;
    reserved properties as keys of a service call; else keywords and declared names."""
    before = text[max(0, offset - 400):offset]
    services = set(lang.SERVICE_STEMS)
    if a.compilation is not None:
        services |= set(a.compilation.extra_services)
    items: list[t.CompletionItem] = []
    events = _event_names(a)
    in_service = _service_object(text, offset, services)
    if _EVENT_CONTEXT.search(before):
        items = [t.CompletionItem(label=e, kind=t.CompletionItemKind.Event) for e in events]
    elif in_service and _VALUE_CONTEXT.search(before):
        items = [t.CompletionItem(label=e, kind=t.CompletionItemKind.Event,
                                  detail="parallel handler parameter") for e in events]
        items += _names(a)
    elif in_service and _KEY_CONTEXT.search(before):
        items = [t.CompletionItem(label=p, kind=t.CompletionItemKind.Property,
                                  detail="reserved property") for p in lang.RESERVED_PROPS]
        items.append(t.CompletionItem(label="prompt", kind=t.CompletionItemKind.Property))
    else:
        items = [t.CompletionItem(label=k, kind=t.CompletionItemKind.Keyword) for k in KEYWORDS]
        items += [t.CompletionItem(label=s, kind=t.CompletionItemKind.Function,
                                   detail="service") for s in sorted(services)]
        items += [t.CompletionItem(label=b, kind=t.CompletionItemKind.Function,
                                   detail="builtin") for b in lang.BUILTINS]
        items += _names(a)
    return t.CompletionList(is_incomplete=False, items=items)


def _names(a: Analysis) -> list[t.CompletionItem]:
    if a.compilation is None:
        return []
    info = a.compilation.info
    seen: set[str] = set()
    out: list[t.CompletionItem] = []
    for b in info.bindings.values():
        if b.name not in seen:
            seen.add(b.name)
            out.append(t.CompletionItem(label=b.name, kind=t.CompletionItemKind.Variable))
    for name in info.entities:
        out.append(t.CompletionItem(label=name, kind=t.CompletionItemKind.Class))
    return out


# -------------------------------------------------------------------- symbols


def symbols(a: Analysis) -> list[t.DocumentSymbol]:
    """Entities (with their realize and handlers), top-level handlers and vars."""
    if a.program is None:
        return []
    r = a.lines.range

    def handler(h: n.OnHandler) -> t.DocumentSymbol:
        return t.DocumentSymbol(name=f"on {h.event.dotted}", kind=t.SymbolKind.Event,
                                range=r(h.span), selection_range=r(h.event.span))

    out: list[t.DocumentSymbol] = []
    for s in a.program.body:
        if isinstance(s, n.EntityDecl):
            kids = [handler(h) for h in s.handlers]
            if s.realize is not None:
                kids.insert(0, t.DocumentSymbol(
                    name="realize", kind=t.SymbolKind.Constructor, range=r(s.realize.span),
                    selection_range=r(s.realize.span)))
            kids.sort(key=lambda k: (k.range.start.line, k.range.start.character))
            out.append(t.DocumentSymbol(name=s.name.name, detail=s.kind,
                                        kind=t.SymbolKind.Class, range=r(s.span),
                                        selection_range=r(s.name.span), children=kids))
        elif isinstance(s, n.OnHandler):
            out.append(handler(s))
        elif isinstance(s, n.VarDecl):
            out.append(t.DocumentSymbol(name=s.name.name, kind=t.SymbolKind.Variable,
                                        range=r(s.span), selection_range=r(s.name.span)))
    return out


# --------------------------------------------------------------------- rename

_IDENT = re.compile(r"[A-Za-z_$][\w$]*\Z")


class RenameError(Exception):
    """A rename the server refuses (the message is shown to the user)."""


# -------------------------------------------------------------- semantic tokens

#: The semantic token types the server sends (its legend), by index.
TOKEN_TYPES = [t.SemanticTokenTypes.Event.value]
_PART = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def semantic_tokens(a: Analysis) -> t.SemanticTokens:
    """Every part of every event name as an ``event`` token: what the TextMate grammar
    cannot tell -- a dotted name whose root is not bound is an event (a bare parallel
    handler parameter ``key: a.b``, a ``fallback: cache.lookup``)."""
    spans = sorted({(o.start, o.end) for o in a.index.occurrences if o.kind == EVENT})
    data: list[int] = []
    prev_line = prev_char = 0
    for start, end in spans:
        for m in _PART.finditer(a.text, start, end):
            first, last = a.lines.position(m.start()), a.lines.position(m.end())
            if first.line == prev_line and data and first.character <= prev_char:
                continue  # inside a token already sent (nested occurrences)
            data += [first.line - prev_line,
                     first.character - (prev_char if first.line == prev_line else 0),
                     last.character - first.character, 0, 0]
            prev_line, prev_char = first.line, first.character
    return t.SemanticTokens(data=data)


def prepare_rename(a: Analysis, offset: int) -> t.Range | None:
    o = a.index.at(offset)
    if o is None or o.kind not in (EVENT, VAR):
        return None
    return a.lines.range(o.span)


def rename(a: Analysis, offset: int, new_name: str) -> t.WorkspaceEdit | None:
    """Rename an event (every occurrence of that exact name) or a variable."""
    o = a.index.at(offset)
    if o is None or o.kind not in (EVENT, VAR):
        return None
    if o.kind == VAR and (not _IDENT.match(new_name) or new_name in KEYWORDS):
        raise RenameError(f"`{new_name}` is not a valid variable name")
    if o.kind == EVENT and not all(_IDENT.match(p) for p in new_name.split(".")):
        raise RenameError(f"`{new_name}` is not a valid event name (dotted identifiers)")
    edits = [t.TextEdit(range=a.lines.range(x.span), new_text=new_name)
             for x in sorted(a.index.same(o), key=lambda x: x.start)]
    return t.WorkspaceEdit(changes={a.uri: edits})


# ----------------------------------------------------------------- formatting


def formatting(a: Analysis) -> list[t.TextEdit] | None:
    """`cxpar fmt` as one edit of the whole document (None when it does not parse)."""
    from cxpar.fmt import FormatError, format_source

    try:
        new = format_source(a.text, a.uri)
    except FormatError:
        return None
    if new == a.text:
        return []
    end = a.lines.position(len(a.text))
    return [t.TextEdit(range=t.Range(start=t.Position(line=0, character=0), end=end),
                       new_text=new)]


# --------------------------------------------------------------- code actions

_DID_YOU_MEAN = re.compile(r"did you mean `([^`]+)`")
#: A JavaScript declaration where CX wants `var`.
_FOREIGN_VAR = re.compile(r"\s*(let|const)\s+[A-Za-z_$]")


def code_actions(a: Analysis, rng: t.Range) -> list[t.CodeAction]:
    """Quick fixes for diagnostics that say how: did-you-mean, missing `;`, `let`, `===`."""
    start, end = a.lines.offset(rng.start), a.lines.offset(rng.end)
    out: list[t.CodeAction] = []
    lsp_diags = {(d.code, d.range.start.line, d.range.start.character): d
                 for d in diagnostics(a)}
    for d in a.diagnostics:
        if d.span.end < start or d.span.start > end:
            continue
        fix = _fix(a, d)
        if fix is None:
            continue
        title, edit = fix
        rd = a.lines.range(d.span)
        ld = lsp_diags.get((d.code, rd.start.line, rd.start.character))
        out.append(t.CodeAction(title=title, kind=t.CodeActionKind.QuickFix,
                                diagnostics=[ld] if ld else None, is_preferred=True,
                                edit=t.WorkspaceEdit(changes={a.uri: [edit]})))
    return out


def _fix(a: Analysis, d: Diagnostic) -> tuple[str, t.TextEdit] | None:
    text = a.text
    if d.code == "CX102":
        at = next((lab.span for lab in d.labels if "`;`" in lab.message), None)
        if at is None:
            at = d.span
            pos = a.lines.position(_code_end_before(text, at.start))
        else:
            pos = a.lines.range(at).start
        return "Add `;`", t.TextEdit(range=t.Range(start=pos, end=pos), new_text=";")
    if d.code == "CX117":  # `===` -> `==`
        op = text[d.span.start:d.span.end]
        return (f"Replace `{op}` with `{op[:2]}`",
                t.TextEdit(range=a.lines.range_of(d.span.start, d.span.end), new_text=op[:2]))
    line_start = a.lines.starts[d.span.line - 1] if d.span.line <= len(a.lines.starts) else 0
    foreign = _FOREIGN_VAR.match(a.lines.line_text(d.span.line - 1))
    if foreign is not None and d.is_error:
        s = line_start + foreign.start(1)
        return (f"Replace `{foreign.group(1)}` with `var`",
                t.TextEdit(range=a.lines.range_of(s, s + len(foreign.group(1))), new_text="var"))
    hint = _DID_YOU_MEAN.search(d.help or "")
    if hint is not None:
        word = re.match(r"[\w$.]+", text[d.span.start:d.span.end])
        if word is not None:
            s = d.span.start
            return (f"Replace with `{hint.group(1)}`",
                    t.TextEdit(range=a.lines.range_of(s, s + word.end()),
                               new_text=hint.group(1)))
    return None


def _code_end_before(text: str, pos: int) -> int:
    i = pos
    while i > 0 and text[i - 1].isspace():
        i -= 1
    return i
