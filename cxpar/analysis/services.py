"""Pass `services`: service calls, object literals, entities and `new` (SPEC §4.4, rules 7, 15, 29).

Fills ``comp.info.calls``/``call_list`` (one :class:`AnalysedCall` per call, its literal
split into request props, reserved props, parallel branches and ``handlers`` items),
``comp.info.entities`` (base chains, inherited realize, subscription order) and the
call-derived part of ``comp.info.emitted``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from cxpar import lang
from cxpar.analysis.model import (
    AnalysedCall,
    Branch,
    EntityInfo,
    Item,
    NameKind,
    ProgramInfo,
    Tool,
)
from cxpar.analysis.resolve import event_chain
from cxpar.ast import nodes as n
from cxpar.ast.visit import walk
from cxpar.diagnostics.habits import (
    FOREIGN_WORDS,
    emit_value,
    foreign_construct,
    reserved_near_miss,
)
from cxpar.diagnostics.model import Diagnostic, Label, error, warning
from cxpar.diagnostics.suggest import suggest
from cxpar.span import Span

if TYPE_CHECKING:
    from cxpar.analysis.pipeline import Compilation

PRIORITIES = ("high", "normal", "low")


def owned_nodes(program: n.Program) -> Iterator[tuple[n.Node, n.OnHandler | n.Realize | None]]:
    """Every node of ``program`` with the handler or realize that contains it."""
    for stmt in program.body:
        if isinstance(stmt, n.OnHandler):
            for node in walk(stmt):
                yield node, stmt
        elif isinstance(stmt, n.EntityDecl):
            if stmt.realize is not None:
                for node in walk(stmt.realize):
                    yield node, stmt.realize
            for h in stmt.handlers:
                for node in walk(h):
                    yield node, h
        else:
            for node in walk(stmt):
                yield node, None


def literal_kind(e: n.Expr) -> str | None:
    """The type of a literal expression, or None for anything computed at run time."""
    if isinstance(e, n.Unary) and e.op in "-+" and isinstance(e.operand, n.Number):
        return "number"
    return {n.Number: "number", n.String: "string", n.Bool: "boolean", n.Null: "null",
            n.Object: "object", n.Array: "array", n.EventPayload: "event"}.get(type(e))


#: A dotted event name written as a string (`handlers: [ "a.b" ]`).
_EVENT_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)+")

_COMPUTED: object = object()


def constant_value(e: n.Expr) -> object:
    """The value of a literal made only of literals (numbers as floats), else
    ``_COMPUTED``."""
    if isinstance(e, n.Number):
        return float(e.value)
    if isinstance(e, n.Unary) and e.op in "-+" and isinstance(e.operand, n.Number):
        return float(-e.operand.value if e.op == "-" else e.operand.value)
    if isinstance(e, n.String):
        return e.value
    if isinstance(e, n.Bool):
        return e.value
    if isinstance(e, n.Null):
        return None
    if isinstance(e, n.Array):
        items = [constant_value(i) for i in e.items]
        return _COMPUTED if any(i is _COMPUTED for i in items) else items
    if isinstance(e, n.Object):
        out: dict[str, object] = {}
        for p in e.props:
            value = constant_value(p.value)
            if value is _COMPUTED:
                return _COMPUTED
            out[p.key.name] = value
        return out
    return _COMPUTED


class Services:
    """Checks service calls, object literals and entities."""

    def __init__(self, comp: Compilation) -> None:
        self.comp = comp
        self.info: ProgramInfo = comp.info
        self.diags: list[Diagnostic] = comp.diagnostics
        self.known: dict[str, str] = {**lang.SERVICE_STEMS, **comp.extra_services}

    def run(self) -> None:
        self.entities()
        call_args: set[int] = set()
        for node, owner in owned_nodes(self.comp.program):
            if isinstance(node, n.ServiceCall):
                self.call(node, owner)
                if isinstance(node.arg, n.Object):
                    call_args.add(id(node.arg))
            elif isinstance(node, n.New):
                self.new(node)
        for node in self.comp.nodes:
            if isinstance(node, n.Object) and id(node) not in call_args:
                self.duplicates(node, literal_of_call=False)

    # -------------------------------------------------------------------- calls

    def call(self, node: n.ServiceCall, owner: n.OnHandler | n.Realize | None) -> None:
        name = node.service.name
        known = name in self.known
        ac = AnalysedCall(node=node, service=name, stem=self.known.get(name, name), known=known,
                          is_literal=isinstance(node.arg, n.Object), owner=owner)
        self.info.calls[id(node)] = ac
        self.info.call_list.append(ac)
        if not known and name in lang.BUILTINS:
            ac.function_call = True
            self.diags.append(warning(
                "CX311", f"`{name}` is a function, not a service", node.service.span,
                label="called without parentheses",
                help=f"write `{name}(...)`"))
            return
        if name == "emit":  # `var r = emit a.b;`
            self.diags.append(emit_value(node.service.span))
            if (ref := self.info.ref(node.arg)) is not None and ref.kind is NameKind.EVENT:
                self.info.emitted.add(ref.name)  # no follow-on "never triggered"
            return
        if not known and name in FOREIGN_WORDS:  # `throw new Error(...)`, `using X.Y;`
            self.diags.append(foreign_construct(node.service.span, name))
        elif not known and name in ("f", "F", "$") and isinstance(node.arg, n.String):
            self.diags.append(error(  # `f"n is {n}"`, `$"n is {n}"`
                "CX301", f"unknown service `{name}`: CX has no interpolated strings",
                node.span, label="an interpolated string",
                help='write a plain string and join values with `+`: `"n is " + n`'))
        elif not known:
            hint = suggest(name, self.known)
            self.diags.append(error(
                "CX301", f"unknown service `{name}`", node.service.span,
                label="not a known service",
                help=f"did you mean `{hint}`?" if hint else
                "known services: " + ", ".join(f"`{s}`" for s in self.known)))
        self.info.emitted.add(f"{ac.stem}.complete")
        self.info.emitted.add(f"{ac.stem}.error")
        if isinstance(node.arg, n.Object):
            self.split(ac, node.arg)

    def split(self, ac: AnalysedCall, obj: n.Object) -> None:
        self.duplicates(obj, literal_of_call=True)
        seen: set[str] = set()
        for p in obj.props:
            key, v = p.key.name, p.value
            if key in seen:
                continue
            seen.add(key)
            if key in lang.RESERVED_PROPS:
                ac.reserved[key] = v
                self.reserved(ac, key, v)
                continue
            meant = reserved_near_miss(key)
            if meant is not None:
                self.diags.append(warning(
                    "CX313", f"`{key}` is not a reserved prop; did you mean `{meant}`?",
                    p.key.span, label="sent to the provider as part of the request",
                    help=f"write `{meant}` to configure the call; the reserved props are "
                         + ", ".join(f"`{r}`" for r in lang.RESERVED_PROPS)))
            branch: Branch | None = None
            if isinstance(v, n.EventPayload):
                branch = Branch(key, v.event.dotted, v.payload, p.span, v)
            else:
                ref = self.info.ref(v)
                if ref is not None and ref.kind is NameKind.EVENT and isinstance(v, n.Member):
                    branch = Branch(key, ref.name, None, p.span, v)
            if key in lang.RESERVED_PAYLOAD_KEYS:
                what = "parallel handler parameter" if branch else "request prop"
                self.diags.append(error(
                    "CX304", f"`{key}` is a reserved payload key", p.key.span,
                    label=f"this {what} would clash with the result payload's `{key}`",
                    help="rename the key; `result`, `_errors` and `_parallel` are set by "
                         "the call"))
            if branch is not None:
                ac.branches.append(branch)
                self.info.emitted.add(branch.event)
            else:
                ac.request.append((key, v))

    def reserved(self, ac: AnalysedCall, key: str, v: n.Expr) -> None:
        kind = literal_kind(v)
        if key == "fallback":  # any value, or an event whose handler returns one
            if isinstance(v, n.EventPayload):
                self.wrong_type(key, v, "a value or an event name (without a payload): "
                                        "`fallback: \"n/a\"` or `fallback: cache.lookup`")
            elif (ref := self.info.ref(v)) is not None and ref.kind is NameKind.EVENT:
                ac.fallback_event = ref.name
                self.info.emitted.add(ref.name)
            return
        if key in lang.MODEL_PROPS:
            self.model_prop(ac, key, v)
            return
        if key == "handlers":
            if not isinstance(v, n.Array):
                if kind is not None or (ref := self.info.ref(v)) is not None \
                        and ref.kind is NameKind.EVENT:
                    self.wrong_type(key, v, "an array of event names: `handlers: [ a.b, c.d ]`")
                else:
                    self.wrong_type(key, v, "an array literal of event names; a computed "
                                            "value cannot name events")
                return
            for item in v.items:
                if isinstance(item, n.EventPayload):
                    ac.items.append(Item(item.event.dotted, item.payload, item.span))
                elif (ch := event_chain(item)) is not None:
                    ac.items.append(Item(".".join(ch[1]), None, item.span))
                elif isinstance(item, n.String) and _EVENT_NAME.fullmatch(item.value):
                    # `handlers: [ "a.b" ]`: the event meant is clear (no CX404 follow-on)
                    self.info.emitted.add(item.value)
                    self.diags.append(error(
                        "CX308", "a `handlers` item must be an event name, not a string",
                        item.span, label="a string",
                        help=f"drop the quotes: `{item.value}` (event names are written "
                             "as names, like in `emit` and `on`)"))
                else:
                    self.diags.append(error(
                        "CX308", "a `handlers` item must be an event name", item.span,
                        label="not an event name",
                        help="write a dotted event name, optionally with a payload: "
                             "`a.b` or `a.b { k: v }`"))
            for it in ac.items:
                self.info.emitted.add(it.event)
            return
        if kind is None:
            return  # computed at run time
        if key == "priority":
            if kind == "number":
                return
            if isinstance(v, n.String):
                if v.value in PRIORITIES:
                    return
                self.wrong_type(key, v, '`"high"`, `"normal"`, `"low"` or a number',
                                got=f"`{v.raw}`")
                return
            self.wrong_type(key, v, '`"high"`, `"normal"`, `"low"` or a number')
            return
        if kind != "number":
            self.wrong_type(key, v, "a number" + (" of milliseconds" if key == "timeout" else ""))
            return
        value = v.value if isinstance(v, n.Number) else None
        if value is None or (key in ("retries", "concurrency") and value != int(value)) or \
                (key == "concurrency" and value < 1):
            want = {"timeout": "a non-negative number of milliseconds",
                    "retries": "a non-negative whole number",
                    "concurrency": "a whole number of at least 1"}[key]
            self.wrong_type(key, v, want, got="this value")

    def model_prop(self, ac: AnalysedCall, key: str, v: n.Expr) -> None:
        """``model``, ``endpoint``, ``schema``, ``tools``, ``tool_rounds``, ``stream``."""
        kind = literal_kind(v)
        if ac.service in lang.NO_MODEL_OPTIONS and key in ("schema", "tools", "tool_rounds",
                                                           "stream"):
            what = {"is": "a yes/no decision", "not": "a yes/no decision",
                    "learn": "the memory's size", "await": "a timer"}[ac.service]
            self.diags.append(error(
                "CX302", f"`{key}` does not apply to `{ac.service}`", v.span,
                label=f"`{ac.service}` answers {what}",
                help=f"use `{key}` with `think`, `infer` or another service that answers "
                     "text"))
            return
        if key in ("model", "endpoint"):
            if kind not in (None, "string") or (isinstance(v, n.String) and not v.value):
                self.wrong_type(key, v, "a non-empty string" + (
                    ": the name of an endpoint of `cxpar.toml` (or `sim`)"
                    if key == "endpoint" else ", e.g. `\"gpt-4o-mini\"`"),
                    got="an empty string" if isinstance(v, n.String) else None)
            return
        if key == "schema":
            if kind not in (None, "object"):
                self.wrong_type(key, v, "a JSON Schema object: `schema: { type: \"object\", "
                                        "properties: { … } }`")
                return
            self.check_schema("schema", v)
            return
        if key == "tool_rounds":
            if kind is None:
                return
            value = v.value if isinstance(v, n.Number) else None
            if value is None or value < 1 or value != int(value):
                self.wrong_type(key, v, "a whole number of at least 1",
                                got=None if kind != "number" else "this value")
            return
        if key == "stream":
            ref = self.info.ref(v)
            if ref is not None and ref.kind is NameKind.EVENT:
                ac.stream_event = ref.name
                self.info.emitted.add(ref.name)
            else:
                self.wrong_type(key, v, "an event name: `stream: answer.chunk` (each piece "
                                        "of the answer is emitted as that event)")
            return
        # tools
        if not isinstance(v, n.Array):
            self.wrong_type(key, v, "an array literal of event names: `tools: [ weather.lookup ]`")
            return
        for item in v.items:
            tool = self.tool_item(item)
            if tool is not None:
                ac.tools.append(tool)
                self.info.emitted.add(tool.event)

    def tool_item(self, item: n.Expr) -> Tool | None:
        if not isinstance(item, n.Object):
            ch = event_chain(item)
            if ch is not None and not isinstance(item, n.EventPayload):
                return Tool(".".join(ch[1]), item.span)
            self.bad_tool(item.span, "not an event name")
            return None
        props = {p.key.name: p for p in item.props}
        ev = props.get("event")
        chain = event_chain(ev.value) if ev is not None else None
        if ev is None or chain is None or isinstance(ev.value, n.EventPayload):
            self.bad_tool(ev.value.span if ev is not None else item.span,
                          "`event` must be an event name" if ev is not None else
                          "no `event`")
            return None
        for p in item.props:
            if p.key.name not in ("event", "description", "parameters"):
                self.bad_tool(p.key.span, f"`{p.key.name}` is not a tool property")
        desc = props.get("description")
        if desc is not None and literal_kind(desc.value) not in (None, "string"):
            self.bad_tool(desc.value.span, "`description` must be a string")
        params = props.get("parameters")
        if params is not None:
            if literal_kind(params.value) not in (None, "object"):
                self.bad_tool(params.value.span, "`parameters` must be a JSON Schema object")
            else:
                self.check_schema("parameters", params.value)
        return Tool(".".join(chain[1]), item.span,
                    desc.value if desc is not None else None,
                    params.value if params is not None else None)

    def bad_tool(self, span: Span, label: str) -> None:
        self.diags.append(error(
            "CX315", "a `tools` item must be an event name or a tool object", span,
            label=label,
            help="write an event name (`weather.lookup`) or `{ event: weather.lookup, "
                 "description: \"…\", parameters: { type: \"object\", … } }`"))

    def check_schema(self, key: str, v: n.Expr) -> None:
        """CX314 for a literal that is not a valid JSON Schema (computed values are
        checked at run time)."""
        value = constant_value(v)
        if value is _COMPUTED:
            return
        from cxpar.jsonschemas import schema_problem

        why = schema_problem(value)
        if why is not None:
            self.diags.append(error(
                "CX314", f"`{key}` is not a valid JSON Schema", v.span, label=why,
                help="see https://json-schema.org/understanding-json-schema/ (draft "
                     "2020-12); e.g. `{ type: \"object\", properties: { name: { type: "
                     "\"string\" } }, required: [\"name\"] }`"))

    def wrong_type(self, key: str, v: n.Expr, want: str, got: str | None = None) -> None:
        kind = literal_kind(v)
        found = got or (f"a {kind}" if kind and kind != "event" else
                        "an event name" if kind == "event" else "this value")
        self.diags.append(error(
            "CX302", f"reserved prop `{key}` has the wrong type", v.span,
            label=f"{found} here", help=f"`{key}` takes {want}"))

    def duplicates(self, obj: n.Object, *, literal_of_call: bool) -> None:
        first: dict[str, n.Prop] = {}
        for p in obj.props:
            prev = first.get(p.key.name)
            if prev is None:
                first[p.key.name] = p
                continue
            if literal_of_call:
                self.diags.append(error(
                    "CX303", f"duplicate key `{p.key.name}` in a service call",
                    p.key.span, label="duplicate key",
                    labels=(Label(prev.key.span, "first used here"),),
                    help="each prop of a service call may appear once; remove or rename one"))
            else:
                self.diags.append(warning(
                    "CX309", f"duplicate key `{p.key.name}` in an object literal",
                    p.key.span, label="this value replaces the earlier one",
                    labels=(Label(prev.key.span, "first used here"),),
                    help="remove or rename one of them"))

    # ----------------------------------------------------------------- entities

    def entities(self) -> None:
        decls: dict[str, n.EntityDecl] = {}
        for stmt in self.comp.program.body:
            if not isinstance(stmt, n.EntityDecl):
                continue
            prev = decls.get(stmt.name.name)
            if prev is not None:
                self.diags.append(error(
                    "CX310", f"entity `{stmt.name.name}` is declared twice", stmt.name.span,
                    label="declared again here",
                    labels=(Label(prev.name.span, "first declared here"),),
                    help="rename one of them"))
                continue
            decls[stmt.name.name] = stmt
        for name, decl in decls.items():
            info = EntityInfo(name=name, decl=decl)
            seen = {name}
            cur = decl
            while cur.base is not None:
                base = cur.base.name
                if base not in decls:
                    if cur is decl:
                        hint = suggest(base, decls)
                        self.diags.append(error(
                            "CX306", f"unknown base entity `{base}`", cur.base.span,
                            label="no entity with this name",
                            help=f"did you mean `{hint}`?" if hint else
                            "declare the base entity in this file"))
                    break
                if base in seen:
                    if cur is decl or base == name:
                        self.diags.append(error(
                            "CX307", f"entity `{name}` inherits from itself", decl.base.span
                            if decl.base else decl.name.span,
                            label="through " + " → ".join([name, *info.bases, base]),
                            help="break the cycle of base entities"))
                    break
                seen.add(base)
                info.bases.append(base)
                cur = decls[base]
            chain = [decl] + [decls[b] for b in info.bases]
            for d in chain:
                if d.realize is not None:
                    info.realize, info.realize_owner = d.realize, d.name.name
                    break
            for d in reversed(chain):
                info.handlers.extend(d.handlers)
            self.info.entities[name] = info

    def new(self, node: n.New) -> None:
        name = node.cls.name
        info = self.info.entities.get(name)
        if info is not None:
            self.new_arity(node, info)
            return
        if any(isinstance(s, n.EntityDecl) and s.name.name == name
               for s in self.comp.program.body):
            return
        hint = suggest(name, self.info.entities)
        self.diags.append(error(
            "CX305", f"unknown entity `{name}` in `new`", node.cls.span,
            label="no `conscious` or `object` with this name",
            help=f"did you mean `{hint}`?" if hint else
            f"declare it: `conscious {name} {{ realize(self: conscious) {{ }} }}`"))


    def new_arity(self, node: n.New, info: EntityInfo) -> None:
        """CX312: `new` arguments beyond what `realize` takes are ignored (rule 29)."""
        params = info.realize.params if info.realize is not None else []
        takes = max(len(params), 1)  # the first argument always gives the fields
        if len(node.args) <= takes:
            return
        extra = node.args[takes:]
        where = (f"`{info.realize_owner}`'s `realize` takes {len(params)} "
                 f"parameter{'s' if len(params) != 1 else ''}" if info.realize is not None
                 else f"`{info.name}` has no `realize`")
        labels: tuple[Label, ...] = ()
        if info.realize is not None:
            r = info.realize.span  # just the `realize` keyword
            labels = (Label(Span(r.file, r.line, r.col, r.line, r.col + 7, r.start, r.start + 7),
                            f"takes {len(params)} parameter{'s' if len(params) != 1 else ''}"),)
        self.diags.append(warning(
            "CX312", f"`new {info.name}` passes {len(node.args)} arguments; "
                     f"{len(extra)} {'is' if len(extra) == 1 else 'are'} ignored",
            extra[0].span.to(extra[-1].span), label="ignored", labels=labels,
            help=f"{where}: the first argument gives the fields, each later argument the "
                 "next parameter; remove the extra arguments or add parameters"))


def run(comp: Compilation) -> None:
    """Analyse every service call, object literal, entity and `new` of ``comp.program``."""
    Services(comp).run()
