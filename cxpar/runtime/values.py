"""CX values and their JavaScript-like semantics (SPEC §4.1, §10 rules 22–26, 38–40).

Representation: null=None, booleans=bool, numbers=float (int accepted), strings=str,
arrays=list, objects=dict (insertion ordered), entity instances=:class:`Instance`.
Every operation that can fail takes ``span`` (an index into the program's span table)
and raises :class:`CxRuntimeError` with it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import NO_SPAN_ID, CxRuntimeError

#: The longest string a program may build (``+``) or print (as JSON), in characters:
#: like JavaScript engines' maximum string length (V8: 2^29 - 24), it turns runaway
#: growth (``s = s + s``, printing a value that shares parts 2^40 times) into a CX error
#: long before the machine runs out of memory (Linux overcommits: no ``MemoryError``).
MAX_STRING = 1 << 28

__all__ = [
    "Instance", "add", "sub", "mul", "div", "mod", "neg", "pos", "not_", "lt", "le", "gt",
    "ge", "eq", "ne", "truthy", "get_prop", "set_prop", "get_index", "set_index", "to_str",
    "to_json", "fmt_num", "len_", "str_", "num", "keys", "type_name", "copy_payload",
    "to_request", "iterate",
]


class Instance:
    """An entity instance: class name, fields (an ordered dict) and a memory list.

    Equality is identity (rule 23/38).
    """

    __slots__ = ("cls", "fields", "memory", "__weakref__")

    def __init__(self, cls: str, fields: dict[str, Any]) -> None:
        self.cls = cls
        self.fields = fields
        self.memory: list[Any] = []

    def __repr__(self) -> str:
        return f"<{self.cls} {to_json(self.fields)}>"


def type_name(v: Any) -> str:
    """The CX name of a value's type, for error messages."""
    if v is None:
        return "null"
    t = type(v)
    if t is bool:
        return "boolean"
    if t is float or t is int:
        return "number"
    if t is str:
        return "string"
    if t is list:
        return "array"
    if t is dict:
        return "object"
    if t is Instance:
        return f"instance of {v.cls}"
    return "function" if callable(v) else t.__name__


def _isnum(v: Any) -> bool:
    t = type(v)
    return t is float or t is int


# ---------------------------------------------------------------- printing

def fmt_num(x: float) -> str:
    """Format a number like JavaScript's ``Number#toString`` (rules 22 and 40)."""
    if x != x:
        return "NaN"
    if x == 0:
        return "0"
    if x in (math.inf, -math.inf):
        return "Infinity" if x > 0 else "-Infinity"
    if type(x) is int:
        x = float(x)
    if x.is_integer() and -9007199254740992.0 <= x <= 9007199254740992.0:
        return str(int(x))
    sign = "-" if x < 0 else ""
    mant, _, exp = repr(abs(x)).partition("e")
    ipart, _, frac = mant.partition(".")
    if frac == "0":
        frac = ""
    digits = (ipart + frac).lstrip("0")
    stripped = digits.rstrip("0")
    tz = len(digits) - len(stripped)
    digits = stripped
    k = len(digits)
    # value = digits * 10**(e10); n = position of the decimal point after the 1st digit run
    e10 = (int(exp) if exp else 0) - len(frac) + tz
    n = k + e10
    if k <= n <= 21:
        s = digits + "0" * (n - k)
    elif 0 < n <= 21:
        s = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        s = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        es = f"e+{e}" if e >= 0 else f"e-{-e}"
        s = (digits[0] + ("." + digits[1:] if k > 1 else "")) + es
    return sign + s


def _too_long(what: str) -> CxRuntimeError:
    return CxRuntimeError(f"{what} would be longer than {MAX_STRING:,} characters (the "
                          "longest string a program may build)")


class _JsonOut:
    """Where :func:`_json_into` writes: small parts, joined into chunks every few
    thousand (so memory stays about one byte per character, not a list entry each), and
    the characters left (so a value shared by many parents cannot print forever: once
    the output passes 1 MiB, :func:`_min_json_size` sizes the whole value at once)."""

    __slots__ = ("parts", "chunks", "left", "root")

    def __init__(self, root: Any) -> None:
        self.parts: list[str] = []
        self.chunks: list[str] = []
        self.left = MAX_STRING
        self.root = root

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise _too_long("the printed value")
        if len(self.parts) > 4096:
            self.chunks.append("".join(self.parts))
            self.parts.clear()
            if self.root is not None and MAX_STRING - self.left > 1 << 20:
                root, self.root = self.root, None  # once per value
                if _min_json_size(root, {}) > MAX_STRING:
                    raise _too_long("the printed value")

    def text(self) -> str:
        return "".join(self.chunks) + "".join(self.parts)


def _min_json_size(v: Any, seen: dict[int, int]) -> int:
    """A lower bound of ``v``'s JSON length, each shared container sized once (linear in
    the distinct containers, however often they are shared)."""
    t = type(v)
    if t is str:
        return len(v) + 2
    if t is list or t is dict or t is Instance:
        known = seen.get(id(v))
        if known is not None:
            return known
        if t is list:
            n = 2 * len(v) + sum(_min_json_size(x, seen) for x in v)
        else:
            d = v.fields if t is Instance else v
            n = 2 + sum(len(str(k)) + 6 + _min_json_size(x, seen) for k, x in d.items())
        seen[id(v)] = n
        return n
    return 1


def _json_into(v: Any, out: _JsonOut) -> None:
    t = type(v)  # `out.parts` is one list for the whole run (`spend` clears it in place)
    parts = out.parts
    if t is str:
        s = json.dumps(v, ensure_ascii=False)
        out.spend(len(s))
        parts.append(s)
    elif t is float or t is int:
        s = fmt_num(v) if math.isfinite(v) else "null"
        out.left -= len(s)  # checked by the next container or string
        parts.append(s)
    elif v is None:
        parts.append("null")
    elif t is bool:
        parts.append("true" if v else "false")
    elif t is list:
        out.spend(2 * len(v) + 2)  # brackets, separators and at least one per item
        parts.append("[")
        for i, item in enumerate(v):
            if i:
                parts.append(", ")
            _json_into(item, out)
        parts.append("]")
    elif t is dict or t is Instance:
        d = v.fields if t is Instance else v
        out.spend(6 * len(d) + 2)  # braces, quotes, separators and one per item
        parts.append("{")
        for i, (k, item) in enumerate(d.items()):
            if i:
                parts.append(", ")
            key = json.dumps(str(k), ensure_ascii=False)
            out.spend(len(key))
            parts.append(key)
            parts.append(": ")
            _json_into(item, out)
        parts.append("}")
    else:
        parts.append(json.dumps(type_name(v)))


def to_json(v: Any) -> str:
    """One-line JSON (``", "`` and ``": "``), JS number format, NaN/Infinity as null;
    at most :data:`MAX_STRING` characters (else a CX error)."""
    out = _JsonOut(v)
    try:
        _json_into(v, out)
    except RecursionError:
        raise CxRuntimeError("cannot print a value nested this deeply (or one that "
                             "contains itself)") from None
    return out.text()


def to_str(v: Any) -> str:
    """The printed form: strings raw, other values as JSON (numbers JS-style)."""
    t = type(v)
    if t is str:
        return v
    if t is float or t is int:
        return fmt_num(v)
    if v is None:
        return "null"
    if t is bool:
        return "true" if v else "false"
    return to_json(v)


# ---------------------------------------------------------------- operators

def truthy(v: Any) -> bool:
    """Falsy: false, null, 0, NaN, "" (rule 23); everything else is truthy."""
    if v is None or v is False:
        return False
    t = type(v)
    if t is float or t is int:
        return v == v and v != 0
    if t is str:
        return v != ""
    return True


def _arith_error(op: str, a: Any, b: Any, span: int) -> CxRuntimeError:
    return CxRuntimeError(
        f"cannot apply `{op}` to {type_name(a)} and {type_name(b)}", span)


def add(a: Any, b: Any, span: int = NO_SPAN_ID) -> Any:
    """``+``: numbers add; a string on either side concatenates printed forms (rule 24)."""
    ta, tb = type(a), type(b)
    if (ta is float or ta is int) and (tb is float or tb is int):
        return a + b
    try:
        if ta is str:
            if tb is not str:
                b = to_str(b)
        elif tb is str:
            a = to_str(a)
        else:
            raise _arith_error("+", a, b, span)
    except CxRuntimeError as exc:
        raise exc.at(span) from None
    if len(a) + len(b) > MAX_STRING:
        raise CxRuntimeError(
            f"string too long: `+` would build {len(a) + len(b):,} characters (the longest "
            f"string a program may build is {MAX_STRING:,})", span)
    return a + b


def sub(a: Any, b: Any, span: int = NO_SPAN_ID) -> Any:
    if _isnum(a) and _isnum(b):
        return a - b
    raise _arith_error("-", a, b, span)


def mul(a: Any, b: Any, span: int = NO_SPAN_ID) -> Any:
    if _isnum(a) and _isnum(b):
        return a * b
    raise _arith_error("*", a, b, span)


def div(a: Any, b: Any, span: int = NO_SPAN_ID) -> Any:
    if _isnum(a) and _isnum(b):
        if b == 0:
            raise CxRuntimeError("division by zero", span)
        return a / b
    raise _arith_error("/", a, b, span)


_INFINITIES = (math.inf, -math.inf)


def mod(a: Any, b: Any, span: int = NO_SPAN_ID) -> Any:
    """``%`` with the dividend's sign (JS); ``% 0`` is an error; ``±Infinity % x`` is NaN
    (as in JavaScript and C's ``fmod``, which native loops use)."""
    if _isnum(a) and _isnum(b):
        if b == 0:
            raise CxRuntimeError("division by zero", span)
        if a in _INFINITIES:
            return math.nan
        return math.fmod(a, b)
    raise _arith_error("%", a, b, span)


def neg(a: Any, span: int = NO_SPAN_ID) -> Any:
    if _isnum(a):
        return -a
    raise CxRuntimeError(f"cannot apply unary `-` to {type_name(a)}", span)


def pos(a: Any, span: int = NO_SPAN_ID) -> Any:
    if _isnum(a):
        return a
    raise CxRuntimeError(f"cannot apply unary `+` to {type_name(a)}", span)


def not_(a: Any) -> bool:
    return not truthy(a)


def _cmp_check(op: str, a: Any, b: Any, span: int) -> None:
    ta, tb = type(a), type(b)
    if (ta is float or ta is int) and (tb is float or tb is int):
        return
    if ta is str and tb is str:
        return
    raise CxRuntimeError(f"cannot compare {type_name(a)} and {type_name(b)} with `{op}`", span)


def lt(a: Any, b: Any, span: int = NO_SPAN_ID) -> bool:
    _cmp_check("<", a, b, span)
    return bool(a < b)


def le(a: Any, b: Any, span: int = NO_SPAN_ID) -> bool:
    _cmp_check("<=", a, b, span)
    return bool(a <= b)


def gt(a: Any, b: Any, span: int = NO_SPAN_ID) -> bool:
    _cmp_check(">", a, b, span)
    return bool(a > b)


def ge(a: Any, b: Any, span: int = NO_SPAN_ID) -> bool:
    _cmp_check(">=", a, b, span)
    return bool(a >= b)


def eq(a: Any, b: Any) -> bool:
    """``==``: no coercion; arrays/objects structural (key order ignored); instances by identity."""
    try:
        return _eq(a, b)
    except RecursionError:
        raise CxRuntimeError("cannot compare values nested this deeply (or ones that "
                             "contain themselves)") from None


def _eq(a: Any, b: Any) -> bool:
    if a is b:
        return not (type(a) is float and a != a)
    ta, tb = type(a), type(b)
    if ta is float or ta is int:
        return (tb is float or tb is int) and a == b
    if ta is not tb:
        return False
    if ta is str:
        return bool(a == b)
    if ta is list:
        return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b, strict=True))
    if ta is dict:
        if len(a) != len(b):
            return False
        for k, v in a.items():
            if k not in b or not _eq(v, b[k]):
                return False
        return True
    return False  # bool mismatches handled by `is`; instances by identity


def ne(a: Any, b: Any) -> bool:
    return not eq(a, b)


# ---------------------------------------------------------------- property access

def get_prop(obj: Any, name: str, span: int = NO_SPAN_ID) -> Any:
    """``obj.name``: missing → null; ``length`` of strings/arrays; null → error (rule 25)."""
    t = type(obj)
    if t is dict:
        return obj.get(name)
    if t is Instance:
        return obj.fields.get(name)
    if obj is None:
        raise CxRuntimeError(f"cannot read property `{name}` of null", span)
    if (t is str or t is list) and name == "length":
        return float(len(obj))
    return None


def set_prop(obj: Any, name: str, value: Any, span: int = NO_SPAN_ID) -> Any:
    """``obj.name = value`` on objects and instances; returns ``value``."""
    t = type(obj)
    if t is dict:
        obj[name] = value
    elif t is Instance:
        obj.fields[name] = value
    elif obj is None:
        raise CxRuntimeError(f"cannot set property `{name}` of null", span)
    else:
        raise CxRuntimeError(f"cannot set property `{name}` of {type_name(obj)}", span)
    return value


def _int_index(idx: Any, span: int) -> int:
    if not _isnum(idx) or not math.isfinite(idx) or idx != int(idx):
        raise CxRuntimeError(f"index must be an integer, got {to_str(idx)}", span)
    return int(idx)


def _key(idx: Any, span: int) -> str:
    if type(idx) is str:
        return idx
    if _isnum(idx):
        return fmt_num(idx)
    raise CxRuntimeError(f"object key must be a string, got {type_name(idx)}", span)


def get_index(obj: Any, idx: Any, span: int = NO_SPAN_ID) -> Any:
    """``obj[idx]``: arrays/strings by integer (out of range → null), objects by key."""
    t = type(obj)
    if t is list:
        i = _int_index(idx, span)
        return obj[i] if 0 <= i < len(obj) else None
    if t is dict:
        return obj.get(_key(idx, span))
    if t is Instance:
        return obj.fields.get(_key(idx, span))
    if t is str:
        i = _int_index(idx, span)
        return obj[i] if 0 <= i < len(obj) else None
    if obj is None:
        raise CxRuntimeError(f"cannot index null with {to_str(idx)}", span)
    return None


def set_index(obj: Any, idx: Any, value: Any, span: int = NO_SPAN_ID) -> Any:
    """``obj[idx] = value``; index ``len`` appends to an array, beyond it is an error."""
    t = type(obj)
    if t is list:
        i = _int_index(idx, span)
        if 0 <= i < len(obj):
            obj[i] = value
        elif i == len(obj):
            obj.append(value)
        else:
            raise CxRuntimeError(f"index {i} out of range for array of length {len(obj)}", span)
    elif t is dict:
        obj[_key(idx, span)] = value
    elif t is Instance:
        obj.fields[_key(idx, span)] = value
    elif obj is None:
        raise CxRuntimeError("cannot index null", span)
    else:
        raise CxRuntimeError(f"cannot assign by index into {type_name(obj)}", span)
    return value


def iterate(v: Any, span: int = NO_SPAN_ID) -> list[Any]:
    """A snapshot to iterate in ``for (var x in v)`` (rule 28)."""
    t = type(v)
    if t is list:
        return list(v)
    if t is dict:
        return list(v)
    if t is Instance:
        return list(v.fields)
    if t is str:
        return list(v)
    raise CxRuntimeError(f"cannot iterate over {type_name(v)}", span)


# ---------------------------------------------------------------- builtins (pure)

def len_(v: Any, span: int = NO_SPAN_ID) -> float:
    """``len``: string code points, array elements, object/instance keys."""
    t = type(v)
    if t is str or t is list or t is dict:
        return float(len(v))
    if t is Instance:
        return float(len(v.fields))
    raise CxRuntimeError(f"len() of {type_name(v)}", span)


def str_(v: Any, span: int = NO_SPAN_ID) -> str:
    """``str``: the printed form."""
    try:
        return to_str(v)
    except CxRuntimeError as exc:
        raise exc.at(span) from None


_NUM_RE = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?\Z")


def num(v: Any) -> float | None:
    """``num``: numbers as is; trimmed ``[+-]digits(.digits)?`` strings parsed; else null."""
    t = type(v)
    if t is float:
        return v
    if t is int:
        return float(v)
    if t is str:
        s = v.strip()
        if _NUM_RE.match(s):
            return float(s)
    return None


def keys(v: Any, span: int = NO_SPAN_ID) -> list[str]:
    """``keys``: the keys of an object or instance, in insertion order."""
    t = type(v)
    if t is dict:
        return list(v)
    if t is Instance:
        return list(v.fields)
    raise CxRuntimeError(f"keys() of {type_name(v)}", span)


# ---------------------------------------------------------------- payload helpers

def copy_payload(v: Any) -> Any:
    """Per-subscriber shallow copy of an object payload; others as is (rule 14)."""
    return dict(v) if type(v) is dict else v


def to_request(v: Any) -> dict[str, Any]:
    """A non-literal service argument as a request (rule 15)."""
    t = type(v)
    if t is dict:
        return dict(v)
    if t is Instance:
        return dict(v.fields)
    return {"value": v}


def parse_json(text: Any, span: int = NO_SPAN_ID) -> Any:
    """The ``parse_json(text)`` builtin (see :mod:`cxpar.runtime.structured`)."""
    from .structured import parse_json as parse

    return parse(text, span)
