"""Structured output (``schema:``) and JSON values (docs/language.md "Structured output").

- :func:`schema_problem`: why a value is not a usable JSON Schema (the ``jsonschema``
  library's meta-schema check, draft 2020-12), used by analysis for literals and by the
  runtime for computed schemas;
- :func:`conform`: a provider's answer as a CX value that satisfies the call's schema
  (a string is parsed as JSON first); anything else is a :class:`ProviderError` of kind
  ``invalid_output`` (retryable) naming the first violation;
- :func:`sample`: the sim's deterministic object for a schema (from the prompt and seed);
- :func:`parse_json` / :func:`from_json`: the ``parse_json`` builtin and JSON → CX values
  (numbers become floats, as every CX number).

``jsonschema`` is imported only when a schema is checked or validated.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from cxpar.jsonschemas import json_data, schema_problem, violation

from .errors import CxRuntimeError
from .providers.base import ProviderError

__all__ = ["INVALID_OUTPUT", "conform", "from_json", "json_data", "parse_json",
           "sample", "schema_problem", "violation"]

#: The ``_errors`` type of an answer that is not JSON or fails the call's schema.
INVALID_OUTPUT = "invalid_output"
#: Characters of an invalid answer quoted in the failure message.
EXCERPT = 80


def from_json(data: Any) -> Any:
    """Decoded JSON as CX values: every number a float."""
    t = type(data)
    if t is int:
        return float(data)
    if t is dict:
        return {k: from_json(v) for k, v in data.items()}
    if t is list:
        return [from_json(v) for v in data]
    return data


def _reject_constant(name: str) -> Any:
    raise ValueError(f"`{name}` is not valid JSON")


def _loads(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


def parse_json(text: Any, span: int = -1) -> Any:
    """The ``parse_json(text)`` builtin: CX runtime error (with the position) on bad JSON."""
    if type(text) is not str:
        from .values import type_name

        raise CxRuntimeError(f"`parse_json` expects a string, got {type_name(text)}", span)
    try:
        return from_json(_loads(text))
    except json.JSONDecodeError as exc:
        raise CxRuntimeError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: "
                             f"{exc.msg}", span) from None
    except (ValueError, RecursionError) as exc:
        raise CxRuntimeError(f"invalid JSON: {exc}", span) from None


def _excerpt(text: str) -> str:
    shown = " ".join(text.split())
    return repr(shown if len(shown) <= EXCERPT else shown[:EXCERPT] + "…")


def conform(answer: Any, schema: Mapping[str, Any]) -> Any:
    """``answer`` as a CX value satisfying ``schema`` (a string answer is parsed as JSON
    first); :class:`ProviderError` of kind ``invalid_output`` otherwise."""
    if type(answer) is str:
        try:
            data = _loads(answer)
        except (ValueError, RecursionError) as exc:
            what = f"line {exc.lineno}, column {exc.colno}: {exc.msg}" \
                if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise ProviderError(f"the answer is not JSON ({what}): {_excerpt(answer)}",
                                kind=INVALID_OUTPUT) from None
    else:
        data = json_data(answer)
    why = violation(data, schema)
    if why is not None:
        raise ProviderError(f"the answer does not match the schema: {why}",
                            kind=INVALID_OUTPUT)
    return from_json(data)


# ------------------------------------------------------------------------ the sim's answers

class _Sampler:
    """Deterministic values for a schema: every choice hashes (seed, text, path)."""

    def __init__(self, root: Mapping[str, Any], text: str, seed: int, salt: str) -> None:
        self.root = root
        self.text = text + "\0" + salt
        self.seed = seed
        self.words = text.split()

    def pick(self, path: str, n: int) -> int:
        h = hashlib.sha256(f"{self.seed}\0{path}\0{self.text}".encode(
            "utf-8", "surrogatepass")).digest()
        return int.from_bytes(h[:8], "big") % max(1, n)

    def resolve(self, schema: Any, depth: int) -> Any:
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and depth < 32:
            ref = schema["$ref"]
            if not ref.startswith("#"):
                return {}
            node: Any = self.root
            for part in ref.lstrip("#").strip("/").split("/") if ref != "#" else []:
                part = part.replace("~1", "/").replace("~0", "~")
                node = node.get(part) if isinstance(node, dict) else None
            schema = node if isinstance(node, dict) else {}
            depth += 1
        return schema

    def value(self, schema: Any, path: str, depth: int = 0) -> Any:
        schema = self.resolve(schema, depth)
        if not isinstance(schema, dict) or depth > 32:
            return None
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[self.pick(path, len(enum))]
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                typed = [o for o in options if not (isinstance(o, dict)
                                                    and o.get("type") == "null")]
                return self.value((typed or options)[0], path, depth + 1)
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and all_of:
            merged: dict[str, Any] = {}
            for part in all_of:
                part = self.resolve(part, depth + 1)
                if isinstance(part, dict):
                    for k, v in part.items():
                        if k == "properties" and isinstance(v, dict):
                            merged.setdefault("properties", {}).update(v)
                        elif k == "required" and isinstance(v, list):
                            merged.setdefault("required", []).extend(v)
                        else:
                            merged.setdefault(k, v)
            rest = {k: v for k, v in schema.items() if k != "allOf"}
            return self.value({**merged, **rest}, path, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"] or kind
            kind = kinds[0] if kinds else None
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema \
                else "string"
        return getattr(self, f"v_{kind}", self.v_string)(schema, path, depth)

    def v_object(self, schema: dict[str, Any], path: str, depth: int) -> Any:
        props = schema.get("properties")
        out: dict[str, Any] = {}
        if isinstance(props, dict):
            for key, sub in props.items():
                out[key] = self.value(sub, f"{path}/{key}", depth + 1)
        required = schema.get("required")
        if isinstance(required, list):
            for key in required:
                if isinstance(key, str) and key not in out:
                    out[key] = self.value({}, f"{path}/{key}", depth + 1)
        return out

    def v_array(self, schema: dict[str, Any], path: str, depth: int) -> Any:
        lo = schema.get("minItems", 0)
        hi = schema.get("maxItems", max(lo, 2))
        n = max(int(lo), min(int(hi), 2))
        items = schema.get("items", {})
        prefix = schema.get("prefixItems")
        out = []
        for i in range(n):
            sub = prefix[i] if isinstance(prefix, list) and i < len(prefix) else items
            out.append(self.value(sub if isinstance(sub, dict) else {}, f"{path}/{i}",
                                  depth + 1))
        return out

    def v_string(self, schema: dict[str, Any], path: str, depth: int) -> Any:
        name = path.rsplit("/", 1)[-1] or "value"
        if name.isdigit():  # an array item: `tags 2`
            name = (path.rstrip("/0123456789").rsplit("/", 1)[-1] or "item") + \
                f" {int(name) + 1}"
        excerpt = " ".join(self.words[:5]) if self.words else "text"
        text = f"{name}: {excerpt}"
        lo = int(schema.get("minLength", 0) or 0)
        hi = schema.get("maxLength")
        if len(text) < lo:
            text += "." * (lo - len(text))
        if isinstance(hi, (int, float)) and len(text) > hi:
            text = text[:int(hi)]
        return text

    def _range(self, schema: dict[str, Any]) -> tuple[float, float]:
        lo = schema.get("minimum", schema.get("exclusiveMinimum"))
        hi = schema.get("maximum", schema.get("exclusiveMaximum"))
        lo = float(lo) if isinstance(lo, (int, float)) else None
        hi = float(hi) if isinstance(hi, (int, float)) else None
        if lo is None and hi is None:
            return 0.0, 100.0
        if lo is None:
            lo = min(0.0, hi - 100.0)  # type: ignore[operator]
        if hi is None:
            hi = lo + 100.0
        if "exclusiveMinimum" in schema and "minimum" not in schema:
            lo += 1.0
        if "exclusiveMaximum" in schema and "maximum" not in schema:
            hi -= 1.0
        return lo, max(lo, hi)

    def v_integer(self, schema: dict[str, Any], path: str, depth: int) -> Any:
        lo, hi = self._range(schema)
        a, b = math.ceil(lo), math.floor(hi)
        if b < a:
            return float(a)
        step = schema.get("multipleOf")
        if isinstance(step, (int, float)) and step > 0 and float(step).is_integer():
            s = int(step)
            first = math.ceil(a / s) * s
            count = max(1, (b - first) // s + 1)
            return float(first + s * self.pick(path, count))
        return float(a + self.pick(path, b - a + 1))

    def v_number(self, schema: dict[str, Any], path: str, depth: int) -> Any:
        if isinstance(schema.get("multipleOf"), (int, float)):
            return self.v_integer(schema, path, depth)
        lo, hi = self._range(schema)
        quarter = self.pick(path, 5) / 4  # 0, .25, .5, .75, 1 of the range
        return float(round(lo + (hi - lo) * quarter, 2))

    def v_boolean(self, schema: dict[str, Any], path: str, depth: int) -> Any:
        return self.pick(path, 2) == 1

    def v_null(self, schema: dict[str, Any], path: str, depth: int) -> Any:
        return None


def sample(schema: Mapping[str, Any], text: str, seed: int = 0, salt: str = "") -> Any:
    """A deterministic CX value satisfying ``schema`` (for the keywords the sim knows:
    types, ``properties``/``required``, ``enum``/``const``, ``items``/``minItems``/
    ``maxItems``, ``minimum``/``maximum``/``multipleOf``, ``minLength``/``maxLength``,
    ``anyOf``/``oneOf``/``allOf`` and local ``$ref``): strings quote the start of
    ``text`` (the prompt); every other choice hashes ``text``, ``salt`` and ``seed``."""
    data = json_data(dict(schema))
    return from_json(_Sampler(data, text, seed, salt).value(data, ""))
