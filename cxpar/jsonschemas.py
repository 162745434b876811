"""JSON Schema checks shared by analysis (literal schemas, CX314) and the runtime.

A leaf module like :mod:`cxpar.lang`: the ``jsonschema`` library (draft 2020-12) is
imported only when a schema is checked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["json_data", "schema_problem", "violation"]


def json_data(value: Any) -> Any:
    """A CX value as plain JSON data for a schema or a request body: integral numbers
    as ints (``minItems: 1`` is sent as ``1``, not ``1.0``), instances as their fields."""
    t = type(value)
    if t is float:
        if math.isfinite(value) and value.is_integer() and abs(value) < 2 ** 53:
            return int(value)
        return value if math.isfinite(value) else None
    if t is dict:
        return {str(k): json_data(v) for k, v in value.items()}
    if t is list:
        return [json_data(v) for v in value]
    fields = getattr(value, "fields", None)
    if isinstance(fields, dict):
        return json_data(fields)
    return value


#: Checked schemas and their validators, by canonical JSON text (a program uses a few
#: schemas many times; the meta-schema check and validator set-up are the costly part).
_CACHE_SIZE = 256
_problems: dict[str, str | None] = {}
_validators: dict[str, Any] = {}


def _key(data: Any) -> str | None:
    try:
        return json.dumps(data, sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None


def _remember(cache: dict[str, Any], key: str | None, value: Any) -> Any:
    if key is not None:
        if len(cache) >= _CACHE_SIZE:
            cache.pop(next(iter(cache)))
        cache[key] = value
    return value


def _validator_class() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` (a CX value) is not a valid JSON Schema, or None if it is."""
    if type(schema) is not dict:
        return "a schema must be an object"
    data = json_data(schema)
    key = _key(data)
    if key is not None and key in _problems:
        return _problems[key]
    from jsonschema.exceptions import SchemaError

    why: str | None = None
    try:
        _validator_class().check_schema(data)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        why = f"{exc.message}" + (f" (at `{where}`)" if where else "")
    except (RecursionError, TypeError, ValueError) as exc:  # pragma: no cover - odd input
        why = f"not a JSON Schema: {exc}"
    if why is None:
        why = _unresolved_ref(data)
    if why is None:
        try:  # a `$ref` loop that never reaches a keyword recurses without end
            validator = _validator_class()(data)
            for probe in _PROBES:
                validator.is_valid(probe)
        except RecursionError:
            why = _REF_LOOP
    return _remember(_problems, key, why)  # type: ignore[no-any-return]


#: One value of each JSON type: validating them reaches every `$ref` loop at the top.
_PROBES: tuple[Any, ...] = (None, True, 0, "", [], {})
_REF_LOOP = "its `$ref`s loop without ever reaching a keyword (the schema refers to itself)"


def _refs(data: Any, path: str = "") -> list[tuple[str, str]]:
    """Every ``$ref`` string in ``data`` with where it is (``properties/a``)."""
    found: list[tuple[str, str]] = []
    if isinstance(data, dict):
        for k, v in data.items():
            if k == "$ref" and isinstance(v, str):
                found.append((v, path))
            else:
                found += _refs(v, f"{path}/{k}" if path else str(k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found += _refs(v, f"{path}/{i}" if path else str(i))
    return found


def _unresolved_ref(data: Any) -> str | None:
    """A ``$ref`` of ``data`` that points nowhere (validation would fail on it at run
    time), or None. Only the root's base URI is used: a schema with nested ``$id`` keywords
    is left to the validator."""
    refs = _refs(data)
    if not refs or any(p for _, p in _nested_ids(data)):
        return None
    from referencing import Registry
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import DRAFT202012

    base = str(data.get("$id", "")) if isinstance(data, dict) else ""
    resolver = Registry().with_resource(base, DRAFT202012.create_resource(data)) \
        .resolver(base_uri=base)
    for ref, where in refs:
        try:
            resolver.lookup(ref)
        except Unresolvable:
            return (f"`$ref` `{ref}` does not point to anything in the schema"
                    + (f" (at `{where}`)" if where else ""))
    return None


def _nested_ids(data: Any, path: str = "") -> list[tuple[str, str]]:
    """Every nested ``$id`` (not the root's) with where it is."""
    found: list[tuple[str, str]] = []
    if isinstance(data, dict):
        for k, v in data.items():
            if k == "$id" and path:
                found.append((str(v), path))
            elif k != "$id":
                found += _nested_ids(v, f"{path}/{k}" if path else str(k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found += _nested_ids(v, f"{path}/{i}" if path else str(i))
    return found


def violation(value: Any, schema: Mapping[str, Any]) -> str | None:
    """The first way ``value`` (JSON data) fails ``schema`` (the most relevant error, as
    ``jsonschema.exceptions.best_match`` picks it), or None if it satisfies it."""
    data = json_data(dict(schema))
    key = _key(data)
    validator = _validators.get(key) if key is not None else None
    if validator is None:
        validator = _remember(_validators, key, _validator_class()(data))
    try:
        if validator.is_valid(value):
            return None
    except RecursionError:
        return f"the schema cannot be checked: {_REF_LOOP}"
    from jsonschema.exceptions import best_match

    err = best_match(validator.iter_errors(value))
    if err is None:  # pragma: no cover - is_valid said otherwise
        return None
    where = "/".join(str(p) for p in err.absolute_path)
    return f"{err.message}" + (f" at `{where}`" if where else "")
