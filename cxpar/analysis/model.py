"""The analysed-program data model: what analysis knows and code generators consume.

Analysis fills one :class:`ProgramInfo` per compilation (``comp.info``). Back ends read
it and never re-derive name resolution, service-call splitting or entity chains.

Side tables are keyed by ``id(node)`` of AST nodes of ``comp.program`` (which keeps the
nodes alive); use the accessor methods (:meth:`ProgramInfo.ref`, :meth:`ProgramInfo.call`).

Classification of expression nodes (:class:`NameRef`, looked up with ``info.ref(node)``):

- every :class:`~cxpar.ast.nodes.Name` and :class:`~cxpar.ast.nodes.This` node has one;
- every :class:`~cxpar.ast.nodes.Member` node has one: ``PROPERTY`` for an ordinary
  property read (``self.name``, ``event.payload.x``), ``EVENT`` for a dotted event
  reference whose root is unbound (``a.b.c``; every ``Member`` and the root ``Name`` of
  the chain carry the same ``EVENT`` ref with the full dotted name; never compile into
  such a chain). In programs without errors, an ``EVENT`` ref in value position only
  occurs as the callee of a :class:`~cxpar.ast.nodes.Call` (``Date.now()``, a warning,
  CX205): compile that call to the runtime error "unknown function `Date.now`";
- event references used as branch values or ``handlers`` items are *also* classified
  ``EVENT``, but back ends should use :class:`AnalysedCall` for those instead;
- a ``handlers: [ ... ]`` array in any *other* object literal (real programs write
  ``emit system.file.read { path: p, handlers: [ file.read.complete ] }``) also holds
  ``EVENT`` items (Name or Member chains; ``EventPayload`` items keep their node): there
  they evaluate to the dotted name as a string (an ``EventPayload`` item to
  ``{"event": name, ...extra}``).

Variables: each declaration (``var``, ``for (var x in …)``, handler and realize
parameters, top-level ``var``) has one :class:`Binding`. Locals are block-scoped, so two
bindings in one function may share a name; ``Binding.unique`` is a name that is unique
within its function (handler, realize or the top level) and safe to use as a Python
identifier suffix. Globals (top-level ``var``, SPEC §10 rule 27) are visible everywhere
and their ``unique`` is the plain name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from cxpar.ast.nodes import (
    EntityDecl,
    Expr,
    Node,
    Object,
    OnHandler,
    Realize,
    ServiceCall,
)
from cxpar.span import Span


class NameKind(StrEnum):
    """What a ``Name``/``This``/``Member`` node denotes."""

    LOCAL = "local"        #: a block-scoped ``var`` or ``for`` variable of a function
    GLOBAL = "global"      #: a top-level ``var`` (rule 27), visible everywhere
    PARAM = "param"        #: a handler's event parameter or a realize parameter
    SELF = "self"          #: ``self`` / ``this`` inside an entity (the instance)
    ENTITY = "entity"      #: the name of a ``conscious``/``object`` declaration
    BUILTIN = "builtin"    #: ``print``, ``len``, ... (cxpar.lang.BUILTINS)
    EVENT = "event"        #: a dotted event reference (root unbound); see module doc
    PROPERTY = "property"  #: a ``Member`` property read on a value (``self.name``)
    UNKNOWN = "unknown"    #: unresolved; an error diagnostic was reported


class ScopeKind(StrEnum):
    """The kind of function a binding lives in."""

    TOP = "top"          #: top-level statements
    HANDLER = "handler"  #: an ``on`` handler body
    REALIZE = "realize"  #: an entity's ``realize``


@dataclass(eq=False, slots=True)
class Binding:
    """One declared variable or parameter."""

    name: str
    kind: NameKind            #: LOCAL, GLOBAL or PARAM
    decl: Node                #: the VarDecl, ForIn or Param that declares it
    span: Span                #: the span of the declared identifier
    unique: str               #: unique within its function (``x``, ``x_1``, ...)
    function: Node            #: the OnHandler, Realize or Program it belongs to


@dataclass(frozen=True, slots=True)
class NameRef:
    """The classification of one ``Name``/``This``/``Member`` node."""

    kind: NameKind
    #: The variable for LOCAL/GLOBAL/PARAM; for PROPERTY, the binding of the chain's
    #: root when it is a variable; else None.
    binding: Binding | None = None
    #: The identifier (``x``, ``print``, ``Agent``, ``self``) or the dotted event name
    #: for EVENT; for PROPERTY, the property name.
    name: str = ""


@dataclass(eq=False, slots=True)
class Branch:
    """A parallel handler parameter ``key: a.b`` / ``key: a.b { extra }``."""

    key: str
    event: str               #: dotted event name
    extra: Object | None     #: the ``{ ... }`` merged over the request, if any
    span: Span               #: the whole ``key: value`` prop
    value: Expr              #: the Member chain or EventPayload node


@dataclass(eq=False, slots=True)
class Item:
    """A ``handlers`` item ``a.b`` / ``a.b { extra }`` (run after the join, in order)."""

    event: str
    extra: Object | None
    span: Span


@dataclass(eq=False, slots=True)
class Tool:
    """A ``tools`` item: ``a.b`` or ``{ event: a.b, description: …, parameters: … }``."""

    event: str
    span: Span
    description: Expr | None = None
    parameters: Expr | None = None


@dataclass(eq=False, slots=True)
class AnalysedCall:
    """A service call split as SPEC §4.4 step 1 says (rules 7, 15, 16)."""

    node: ServiceCall
    service: str             #: as written (``think``)
    stem: str                #: event stem (``thinking``); the name itself if unknown
    known: bool              #: a builtin or plug-in service
    is_literal: bool         #: the argument is an object literal (else rule 15)
    #: Plain props sent to the provider, in source order (literal args only).
    request: list[tuple[str, Expr]] = field(default_factory=list)
    #: Reserved props present: handlers, timeout, retries, priority, concurrency.
    reserved: dict[str, Expr] = field(default_factory=dict)
    #: Parallel branches in source order.
    branches: list[Branch] = field(default_factory=list)
    #: ``handlers`` items in order (empty when ``handlers`` is not an array literal).
    items: list[Item] = field(default_factory=list)
    #: ``fallback: a.b``: the event whose handler supplies the fallback value.
    fallback_event: str | None = None
    #: ``tools: [...]`` items (when ``tools`` is an array literal).
    tools: list[Tool] = field(default_factory=list)
    #: ``stream: a.b``: the event each chunk of the answer is emitted as.
    stream_event: str | None = None
    #: The handler or realize containing the call (None at top level).
    owner: OnHandler | Realize | None = None
    #: The "service" is a builtin function used like one (``print "hi";``, a warning):
    #: compile it as the call ``print(arg)``; nothing else of this record applies.
    function_call: bool = False

    @property
    def span(self) -> Span:
        return self.node.span


@dataclass(eq=False, slots=True)
class EntityInfo:
    """A ``conscious``/``object`` declaration with its inheritance resolved (rule 29)."""

    name: str
    decl: EntityDecl
    #: Base names, nearest first; stops before an unknown base or a cycle (both errors).
    bases: list[str] = field(default_factory=list)
    #: The realize that runs on ``new``: own, else the nearest base's (None if none).
    realize: Realize | None = None
    realize_owner: str | None = None
    #: Handlers an instance subscribes, in subscription order (rule 1): the farthest
    #: base's first, each entity's in source order.
    handlers: list[OnHandler] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class HandlerInfo:
    """One ``on`` handler."""

    node: OnHandler
    event: str                       #: dotted pattern as written (may contain ``any``)
    entity: str | None               #: the declaring entity (None at top level)
    param: Binding | None            #: the event parameter, if declared
    external: bool = False           #: ``/// @external`` doc comment

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.node.event.parts)


@dataclass(eq=False)
class ProgramInfo:
    """Everything analysis found out about one program (``comp.info``)."""

    #: ``id(node)`` -> classification, for Name, This and Member nodes.
    names: dict[int, NameRef] = field(default_factory=dict)
    #: ``id(ServiceCall)`` -> analysed call.
    calls: dict[int, AnalysedCall] = field(default_factory=dict)
    #: The same calls in source order.
    call_list: list[AnalysedCall] = field(default_factory=list)
    #: Entities by name, in source order.
    entities: dict[str, EntityInfo] = field(default_factory=dict)
    #: Top-level ``var``s (rule 27) by name (first declaration).
    globals: dict[str, Binding] = field(default_factory=dict)
    #: Every binding, by ``id(decl node)`` (VarDecl, ForIn or Param).
    bindings: dict[int, Binding] = field(default_factory=dict)
    #: Bindings per function, by ``id`` of the OnHandler, Realize or Program.
    function_locals: dict[int, list[Binding]] = field(default_factory=dict)
    #: Every ``on`` handler in source order (top level and entities).
    handlers: list[HandlerInfo] = field(default_factory=list)
    #: Dotted patterns that have at least one ``on`` handler.
    handled: set[str] = field(default_factory=set)
    #: Literal event names the program can emit: ``emit`` targets, branch and item events,
    #: ``<stem>.complete``/``<stem>.error`` of its calls, and ``system.start``.
    emitted: set[str] = field(default_factory=set)

    def ref(self, node: Node) -> NameRef | None:
        """The classification of a Name/This/Member node (None if not classified)."""
        return self.names.get(id(node))

    def call(self, node: ServiceCall) -> AnalysedCall:
        """The analysed form of a ServiceCall node."""
        return self.calls[id(node)]

    def binding_of(self, decl: Node) -> Binding | None:
        """The binding a VarDecl/ForIn/Param declares."""
        return self.bindings.get(id(decl))

    #: Cache for :meth:`subscribers`: (handler count, exact index, wildcard handlers, memo).
    _index: tuple[int, dict[str, list[int]], list[int], dict[str, list[HandlerInfo]]] | None \
        = field(default=None, init=False, repr=False)

    def subscribers(self, event: str) -> list[HandlerInfo]:
        """Handlers whose pattern matches the literal ``event`` (rule 4 ``any``), in order."""
        index = self._index
        if index is None or index[0] != len(self.handlers):
            exact: dict[str, list[int]] = {}
            wild: list[int] = []
            for i, h in enumerate(self.handlers):
                if "any" in h.parts:
                    wild.append(i)
                else:
                    exact.setdefault(h.event, []).append(i)
            index = self._index = (len(self.handlers), exact, wild, {})
        memo = index[3]
        found = memo.get(event)
        if found is None:
            ids = list(index[1].get(event, ()))
            extra = [i for i in index[2] if matches(self.handlers[i].parts, event)]
            if extra:
                ids = sorted(ids + extra)
            found = memo[event] = [self.handlers[i] for i in ids]
        return found


def matches(pattern: tuple[str, ...] | list[str], event: str) -> bool:
    """Whether an ``on`` pattern matches a literal event name (``any`` = one part)."""
    parts = event.split(".")
    if len(parts) != len(pattern):
        return False
    return all(p == "any" or p == e for p, e in zip(pattern, parts, strict=True))
