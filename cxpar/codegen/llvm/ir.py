"""LLVM IR for the dispatch layer of one analysed program (``--emit llvm-ir``).

Everything static about dispatch is decided here, at compile time:

- **Interned events.** Every literal event name the program can emit or subscribe to
  exactly (``ProgramInfo.emitted`` plus exact ``on`` patterns; emitted names are always
  literal, rule 4) gets an id. ``cx_event_id(data, len)`` maps a name's UTF-8 bytes to
  its id (a ``switch`` on the length, then ``memcmp`` against the few candidates of
  that length, or a ``switch`` on the FNV-1a hash of the bytes first when there are
  many) or ``-1`` for a name the compiler never saw (a plug-in stem, a REPL entry).
- **Static routing.** Every distinct ``on`` pattern gets a pattern id; the table
  ``@cx_match_*`` lists, per event id, the patterns that match it, ``any`` parts
  (rule 4) resolved here rather than at run time.
- **Subscriber table.** ``cx_subscribers`` is a CPython ``METH_FASTCALL`` builtin:
  ``subscribers(name)`` interns ``name`` natively and returns the subscriber tuple cached
  in a per-router table indexed by event id; on a miss it calls the router's Python
  fallback (which fills the slot). The table lives in memory owned by the router and is
  reached through the builtin's ``self`` (an int holding its address).
- **Fan-out bookkeeping.** Per analysed call with parallel handler parameters, a
  constant slot table (branch index → event id, commented with the result key), and
  the generic helpers ``cx_fanout`` (subscriber counts → slot ranges, ``no_handler``
  flags, join counter), ``cx_slot_keys`` (slot → key index, the payload slot mapping)
  and ``cx_join_settle`` (the join counter). These are measured in
  ``bench/llvm_dispatch.py``; see docs/performance.md for which are used.

The IR is plain text with comments naming events, patterns and keys. LLVM ≥ 15
(opaque pointers).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cxpar.analysis.model import ProgramInfo, matches

__all__ = ["DispatchTables", "CallSlots", "tables_for", "generate_ir"]


@dataclass
class CallSlots:
    """The branch slots of one analysed call: key order = slot order (rule 11)."""

    index: int                 #: position in ``ProgramInfo.call_list``
    service: str
    line: int
    keys: list[str]
    events: list[int]          #: event id per branch key


@dataclass
class DispatchTables:
    """The static dispatch data of one program, as Python data (and in the IR)."""

    events: list[str] = field(default_factory=list)          #: event id → name
    patterns: list[str] = field(default_factory=list)        #: pattern id → ``on`` pattern
    match: list[list[int]] = field(default_factory=list)     #: event id → pattern ids
    calls: list[CallSlots] = field(default_factory=list)

    def event_ids(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.events)}

    def pattern_ids(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.patterns)}


def tables_for(info: ProgramInfo) -> DispatchTables:
    """Intern events and patterns and resolve the static match table."""
    patterns: list[str] = []
    for h in info.handlers:
        if h.event not in patterns:
            patterns.append(h.event)
    names = set(info.emitted)
    names.update(p for p in patterns if "any" not in p.split("."))
    for call in info.call_list:
        names.update(b.event for b in call.branches)
        names.update(it.event for it in call.items)
    events = sorted(names)
    split = [tuple(p.split(".")) for p in patterns]
    match = [[pid for pid, parts in enumerate(split) if matches(parts, ev)] for ev in events]
    ids = {name: i for i, name in enumerate(events)}
    calls = []
    for ci, call in enumerate(info.call_list):
        if call.branches and not call.function_call:
            calls.append(CallSlots(ci, call.service, call.span.line,
                                   [b.key for b in call.branches],
                                   [ids[b.event] for b in call.branches]))
    return DispatchTables(events, patterns, match, calls)


def _bytes(text: str) -> tuple[str, int]:
    """An LLVM ``c"..."`` literal for the UTF-8 bytes of ``text`` and its length."""
    raw = text.encode("utf-8")
    out = []
    for b in raw:
        ch = chr(b)
        out.append(ch if 32 <= b < 127 and ch not in '"\\' else f"\\{b:02X}")
    return "".join(out), len(raw)


def _comment(text: str) -> str:
    """Text safe for an IR ``;`` comment: one line, printable (others as ``\\xNN``)."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


_HEADER = """\
; ModuleID = 'cxpar.dispatch'
; cxpar dispatch layer for {source}
; generated from the analysed program; see cxpar/codegen/llvm/ir.py
;
; events (interned ids):
{events}
; on patterns (pattern ids):
{patterns}

%cx.state = type {{ ptr, ptr, i64 }}   ; per-router: subscriber table, fallback, n events

declare i32 @memcmp(ptr, ptr, i64)
declare ptr @PyUnicode_AsUTF8AndSize(ptr, ptr)
declare void @PyErr_Clear()
declare ptr @PyLong_AsVoidPtr(ptr)
declare void @Py_IncRef(ptr)
declare ptr @PyObject_Vectorcall(ptr, ptr, i64, ptr)

@cx_n_events = constant i32 {n_events}
@cx_n_patterns = constant i32 {n_patterns}
"""

_SUBSCRIBERS = """
; subscribers(name) -> tuple: a METH_FASTCALL builtin. Interns `name` natively and
; returns the subscriber tuple cached in this router's table (a new reference); a name
; the compiler never saw, or an empty slot, goes to the router's Python fallback.
define ptr @cx_subscribers(ptr %self, ptr %args, i64 %nargs) {{
entry:
  %sizep = alloca i64
  %one = icmp eq i64 %nargs, 1
  br i1 %one, label %str, label %slow
str:
  %name = load ptr, ptr %args
  %data = call ptr @PyUnicode_AsUTF8AndSize(ptr %name, ptr %sizep)
  %bad = icmp eq ptr %data, null
  br i1 %bad, label %clear, label %route
clear:
  call void @PyErr_Clear()
  br label %slow
route:
  %n = load i64, ptr %sizep
  %id = call i32 @cx_event_id(ptr %data, i64 %n)
  %known = icmp sge i32 %id, 0
  br i1 %known, label %table, label %slow
table:
  %st = call ptr @PyLong_AsVoidPtr(ptr %self)
  %tab = load ptr, ptr %st
  %idx = sext i32 %id to i64
  %slot = getelementptr ptr, ptr %tab, i64 %idx
  %subs = load ptr, ptr %slot
  %empty = icmp eq ptr %subs, null
  br i1 %empty, label %slow, label %hit
hit:
  call void @Py_IncRef(ptr %subs)
  ret ptr %subs
slow:
  %st2 = call ptr @PyLong_AsVoidPtr(ptr %self)
  %fbp = getelementptr %cx.state, ptr %st2, i32 0, i32 1
  %fb = load ptr, ptr %fbp
  %r = call ptr @PyObject_Vectorcall(ptr %fb, ptr %args, i64 %nargs, ptr null)
  ret ptr %r
}}

; match(event id, out) -> count: the pattern ids matching an event (static, rule 4)
define i32 @cx_match(i32 %ev, ptr %out) {{
entry:
  %bad = icmp uge i32 %ev, {n_events}
  br i1 %bad, label %none, label %copy0
none:
  ret i32 -1
copy0:
  %i = zext i32 %ev to i64
  %lo.p = getelementptr [{n_off} x i32], ptr @cx_match_off, i64 0, i64 %i
  %lo = load i32, ptr %lo.p
  %j = add i64 %i, 1
  %hi.p = getelementptr [{n_off} x i32], ptr @cx_match_off, i64 0, i64 %j
  %hi = load i32, ptr %hi.p
  %cnt = sub i32 %hi, %lo
  br label %loop
loop:
  %k = phi i32 [ 0, %copy0 ], [ %k1, %body ]
  %more = icmp slt i32 %k, %cnt
  br i1 %more, label %body, label %done
body:
  %src = add i32 %lo, %k
  %src64 = zext i32 %src to i64
  %sp = getelementptr [{n_pat_cells} x i32], ptr @cx_match_pat, i64 0, i64 %src64
  %pid = load i32, ptr %sp
  %k64 = zext i32 %k to i64
  %dp = getelementptr i32, ptr %out, i64 %k64
  store i32 %pid, ptr %dp
  %k1 = add i32 %k, 1
  br label %loop
done:
  ret i32 %cnt
}}
"""

_HELPERS = """
; fan-out bookkeeping for one call: counts[k] = subscribers of branch key k (fixed at
; fan-out, rule 9). Writes the slot range [first[k], end[k]) of each key and
; nohandler[k] = 1 for a key with no subscriber; returns the join counter (slots).
define i64 @cx_fanout(i64 %nkeys, ptr %counts, ptr %first, ptr %end, ptr %nohandler) {
entry:
  br label %loop
loop:
  %k = phi i64 [ 0, %entry ], [ %k1, %body ]
  %acc = phi i64 [ 0, %entry ], [ %acc1, %body ]
  %more = icmp slt i64 %k, %nkeys
  br i1 %more, label %body, label %done
body:
  %cp = getelementptr i32, ptr %counts, i64 %k
  %c = load i32, ptr %cp
  %c64 = sext i32 %c to i64
  %fp = getelementptr i64, ptr %first, i64 %k
  store i64 %acc, ptr %fp
  %acc1 = add i64 %acc, %c64
  %ep = getelementptr i64, ptr %end, i64 %k
  store i64 %acc1, ptr %ep
  %none = icmp eq i32 %c, 0
  %flag = zext i1 %none to i8
  %np = getelementptr i8, ptr %nohandler, i64 %k
  store i8 %flag, ptr %np
  %k1 = add i64 %k, 1
  br label %loop
done:
  ret i64 %acc
}

; payload slot mapping: key_of_slot[s] = k for every slot s in [first[k], end[k])
define void @cx_slot_keys(i64 %nkeys, ptr %first, ptr %end, ptr %key_of_slot) {
entry:
  br label %keys
keys:
  %k = phi i64 [ 0, %entry ], [ %k1, %next ]
  %more = icmp slt i64 %k, %nkeys
  br i1 %more, label %range, label %done
range:
  %fp = getelementptr i64, ptr %first, i64 %k
  %f = load i64, ptr %fp
  %ep = getelementptr i64, ptr %end, i64 %k
  %e = load i64, ptr %ep
  %k32 = trunc i64 %k to i32
  br label %slots
slots:
  %s = phi i64 [ %f, %range ], [ %s1, %store ]
  %in = icmp slt i64 %s, %e
  br i1 %in, label %store, label %next
store:
  %dp = getelementptr i32, ptr %key_of_slot, i64 %s
  store i32 %k32, ptr %dp
  %s1 = add i64 %s, 1
  br label %slots
next:
  %k1 = add i64 %k, 1
  br label %keys
done:
  ret void
}

; join counter: one branch invocation settled; returns the slots still pending
define i64 @cx_join_settle(ptr %counter) {
entry:
  %old = load i64, ptr %counter
  %new = sub i64 %old, 1
  store i64 %new, ptr %counter
  ret i64 %new
}
"""


_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = (1 << 64) - 1
#: Up to this many names of one length are told apart by ``memcmp`` alone; more are
#: hashed (FNV-1a over the bytes, unrolled: the length is a constant) and ``switch``ed.
_CHAIN_MAX = 4


def fnv1a(data: bytes) -> int:
    """64-bit FNV-1a, as the IR computes it."""
    h = _FNV_OFFSET
    for b in data:
        h = ((h ^ b) * _FNV_PRIME) & _MASK
    return h


def _i64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _chain(out: list[str], label: str, cands: list[tuple[int, str]], n: int) -> None:
    """Blocks comparing the name against each candidate with ``memcmp``."""
    for j, (eid, name) in enumerate(cands):
        lab = label if j == 0 else f"{label}.{j}"
        nxt = f"{label}.{j + 1}" if j + 1 < len(cands) else "miss"
        out.append(f"{lab}:  ; {_comment(name)}")
        out.append(f"  %c{eid} = call i32 @memcmp(ptr %s, ptr @ev.{eid}, i64 {n})")
        out.append(f"  %e{eid} = icmp eq i32 %c{eid}, 0")
        out.append(f"  br i1 %e{eid}, label %hit{eid}, label %{nxt}")


def _event_id_fn(events: list[str]) -> list[str]:
    by_len: dict[int, list[tuple[int, str]]] = {}
    for i, name in enumerate(events):
        by_len.setdefault(len(name.encode("utf-8")), []).append((i, name))
    out = ["", "; event_id(data, len) -> interned id, or -1 for a name not in this program:",
           "; switch on the length; a few candidates: memcmp each; many: switch on the",
           "; FNV-1a hash of the bytes (unrolled by LLVM), then memcmp to confirm",
           "define i32 @cx_event_id(ptr %s, i64 %n) {", "entry:"]
    cases = " ".join(f"i64 {n}, label %len{n}" for n in sorted(by_len))
    out.append(f"  switch i64 %n, label %miss [ {cases} ]")
    for n in sorted(by_len):
        cands = by_len[n]
        if len(cands) <= _CHAIN_MAX:
            _chain(out, f"len{n}", cands, n)
            continue
        groups: dict[int, list[tuple[int, str]]] = {}
        for eid, name in cands:
            groups.setdefault(fnv1a(name.encode("utf-8")), []).append((eid, name))
        p = f"h{n}"
        out.append(f"len{n}:  ; {len(cands)} names of {n} bytes: hash")
        out.append(f"  br label %{p}.loop")
        out.append(f"{p}.loop:")
        out.append(f"  %{p}.i = phi i64 [ 0, %len{n} ], [ %{p}.i1, %{p}.body ]")
        out.append(f"  %{p}.h = phi i64 [ {_i64(_FNV_OFFSET)}, %len{n} ], "
                   f"[ %{p}.h1, %{p}.body ]")
        out.append(f"  %{p}.more = icmp ult i64 %{p}.i, {n}")
        out.append(f"  br i1 %{p}.more, label %{p}.body, label %{p}.done")
        out.append(f"{p}.body:")
        out.append(f"  %{p}.p = getelementptr i8, ptr %s, i64 %{p}.i")
        out.append(f"  %{p}.b = load i8, ptr %{p}.p")
        out.append(f"  %{p}.b64 = zext i8 %{p}.b to i64")
        out.append(f"  %{p}.x = xor i64 %{p}.h, %{p}.b64")
        out.append(f"  %{p}.h1 = mul i64 %{p}.x, {_FNV_PRIME}")
        out.append(f"  %{p}.i1 = add i64 %{p}.i, 1")
        out.append(f"  br label %{p}.loop")
        out.append(f"{p}.done:")
        hcases = " ".join(f"i64 {_i64(h)}, label %{p}.g{g}"
                          for g, h in enumerate(groups))
        out.append(f"  switch i64 %{p}.h, label %miss [ {hcases} ]")
        for g, members in enumerate(groups.values()):
            _chain(out, f"{p}.g{g}", members, n)
    for eid, name in enumerate(events):
        out.append(f"hit{eid}:  ; {_comment(name)}")
        out.append(f"  ret i32 {eid}")
    out.append("miss:")
    out.append("  ret i32 -1")
    out.append("}")
    return out


def generate_ir(info: ProgramInfo, source: str = "<program>",
                tables: DispatchTables | None = None) -> str:
    """The dispatch module's IR text for an analysed program."""
    t = tables if tables is not None else tables_for(info)
    events_doc = "\n".join(
        f";   {i:4d}  {_comment(e)}" + (f"  -> patterns {t.match[i]}" if t.match[i] else
                                         "  -> no subscriber pattern")
        for i, e in enumerate(t.events)) or ";   (none)"
    pats_doc = "\n".join(f";   {i:4d}  on {_comment(p)}" for i, p in enumerate(t.patterns)) \
        or ";   (none)"
    n_events = len(t.events)
    lines = [_HEADER.format(source=_comment(source), events=events_doc, patterns=pats_doc,
                            n_events=n_events, n_patterns=len(t.patterns))]
    # event name constants
    for i, name in enumerate(t.events):
        lit, n = _bytes(name)
        lines.append(f'@ev.{i} = private unnamed_addr constant [{n} x i8] c"{lit}"'
                     f"  ; {_comment(name)}")
    # static match table (CSR): offsets per event id, then pattern ids
    offs = [0]
    cells: list[int] = []
    for m in t.match:
        cells.extend(m)
        offs.append(len(cells))
    lines.append("")
    lines.append("; static routing: patterns of event i are cx_match_pat[off[i] .. off[i+1])")
    lines.append(f"@cx_match_off = constant [{len(offs)} x i32] ["
                 + ", ".join(f"i32 {o}" for o in offs) + "]")
    pat_cells = cells or [0]
    lines.append(f"@cx_match_pat = constant [{len(pat_cells)} x i32] ["
                 + ", ".join(f"i32 {c}" for c in pat_cells) + "]")
    # per-call slot tables
    if t.calls:
        lines.append("")
        lines.append("; branch slots per service call (slot = key index, rule 11): event id per key")
    for c in t.calls:
        lines.append(f"; call {c.index}: `{_comment(c.service)}` at line {c.line}")
        for k, (key, ev) in enumerate(zip(c.keys, c.events, strict=True)):
            lines.append(f";   slot {k}: key `{_comment(key)}` <- {_comment(t.events[ev])} "
                         f"(event {ev})")
        lines.append(f"@cx_call{c.index}_events = constant [{len(c.events)} x i32] ["
                     + ", ".join(f"i32 {e}" for e in c.events) + "]")
    lines.extend(_event_id_fn(t.events))
    lines.append(_SUBSCRIBERS.format(n_events=n_events, n_off=len(offs),
                                     n_pat_cells=len(pat_cells)))
    lines.append(_HELPERS)
    return "\n".join(lines)
