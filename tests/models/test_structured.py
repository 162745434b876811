"""Structured output on the sim (``schema:``), parse_json/to_json, CX314."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from cxpar.jsonschemas import json_data
from cxpar.runtime.providers.base import ProviderError
from cxpar.runtime.structured import conform, sample

from .conftest import diagnostics, run_cx

SCHEMA_DATA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 30},
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "ratio": {"type": "number", "minimum": 0, "maximum": 1},
        "urgent": {"type": "boolean"},
        "team": {"enum": ["billing", "network", "hardware"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
        "owner": {"type": "object", "properties": {"name": {"type": "string"}},
                  "required": ["name"]},
    },
    "required": ["title", "score", "ratio", "urgent", "team", "tags", "owner"],
}
SCHEMA = json.dumps(SCHEMA_DATA)  # JSON is a CX object literal


def test_sim_answers_a_deterministic_object_that_satisfies_the_schema() -> None:
    src = f"""
        var r = think {{ prompt: "Router drops connections", schema: {SCHEMA} }};
        print(r.result);
        print(r.result.score + 1, r.result.owner.name);
    """
    a, b = run_cx(src), run_cx(src)
    assert a.code == 0, a.err
    assert a.out == b.out
    value = a.json()
    schema = jsonschema.Draft202012Validator
    assert schema(SCHEMA_DATA).is_valid(value)
    assert value["title"].startswith("title: Router drops")
    other_seed = run_cx(src, seed=5)
    assert other_seed.out != a.out  # the seed changes the choices


def test_invalid_literal_schema_is_a_compile_error() -> None:
    diags = diagnostics("""
        think { prompt: "p", schema: { type: "object", required: "name" } };
        think { prompt: "p", schema: 3 };
        think { prompt: "p", tools: [ { event: a.b, parameters: { type: "strin" } } ] };
        on a.b (e) { return 1; }
    """)
    assert [d.code for d in diags] == ["CX314", "CX302", "CX314"], diags
    assert "is not of type 'array'" in diags[0].labels[0].message if diags[0].labels else True


def test_computed_invalid_schema_is_a_provider_failure_of_the_call() -> None:
    """Issue 20: a computed schema (or tool `parameters`) that is not a valid JSON
    Schema fails the call with type `provider`; nothing is sent, nothing retried, and
    the program goes on."""
    r = run_cx("""
        on a.b (x) { return 1; }
        var s = { type: "strng" };
        var r = think { prompt: "p", schema: s, retries: 2 };
        print(r.result, r._errors.result.type, r._errors.result.attempts);
        print(r._errors.result.message);
        var p = { type: "objct" };
        var t = think { prompt: "p", tools: [ { event: a.b, parameters: p } ] };
        print(t._errors.result.type, len(t._tools));
        print(t._errors.result.message);
        print("reached");
    """)
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        "null provider 0",
        "`think` failed: `schema` is not a valid JSON Schema: 'strng' is not valid under "
        "any of the given schemas (at `type`)",
        "provider 0",
        "`think` failed: the `parameters` of tool `a.b` are not a valid JSON Schema: "
        "'objct' is not valid under any of the given schemas (at `type`)",
        "reached"]


def test_conform_parses_and_names_the_first_violation() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert conform('{"n": 3}', schema) == {"n": 3.0}
    for bad, msg in (('{"n": "x"}', "'x' is not of type 'integer' at `n`"),
                     ("not json", "the answer is not JSON (line 1, column 1"),
                     ("{}", "'n' is a required property")):
        try:
            conform(bad, schema)
        except ProviderError as exc:
            assert exc.kind == "invalid_output" and exc.retryable
            assert msg in str(exc), str(exc)
        else:
            raise AssertionError(bad)


def test_parse_json_and_to_json_builtins() -> None:
    r = run_cx("""
        var v = parse_json("{\\"a\\": [1, 2.5, true, null], \\"b\\": {\\"c\\": \\"d\\"}}");
        print(v.a[0] + 1, v.b.c, to_json(v));
        print(to_json("x"), to_json(1.5), to_json([1, { k: null }]));
        var bad = parse_json("{\\"a\\": }");
    """)
    assert r.lines == ['2 d {"a": [1, 2.5, true, null], "b": {"c": "d"}}',
                       '"x" 1.5 [1, {"k": null}]']
    assert r.code == 3
    assert "invalid JSON at line 1, column 7" in r.err and "t.cx:5" in r.err


def test_parse_json_of_a_non_string_is_an_error() -> None:
    r = run_cx("var v = parse_json(3);")
    assert r.code == 3 and "`parse_json` expects a string, got number" in r.err


_leaf = st.sampled_from([
    {"type": "string"}, {"type": "string", "minLength": 40}, {"type": "integer"},
    {"type": "integer", "minimum": -3, "maximum": 3}, {"type": "number", "maximum": -10},
    {"type": "boolean"}, {"enum": ["a", 1, None]}, {"const": "k"}, {"type": "null"},
    {"type": "integer", "multipleOf": 5, "minimum": 1, "maximum": 40},
    {"type": ["string", "null"]}, {"anyOf": [{"type": "integer"}, {"type": "string"}]},
])


def _schemas() -> Any:
    return st.recursive(_leaf, lambda inner: st.one_of(
        st.builds(lambda items, lo: {"type": "array", "items": items, "minItems": lo,
                                     "maxItems": lo + 2}, inner, st.integers(0, 3)),
        st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), inner, max_size=4)
        .map(lambda props: {"type": "object", "properties": props, "required": list(props)}),
    ), max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(_schemas(), st.text(max_size=30), st.integers(0, 3))
def test_sim_samples_satisfy_their_schema(schema: Any, prompt: str, seed: int) -> None:
    value = sample(schema, prompt, seed)
    jsonschema.validate(json_data(value), schema)
    assert sample(schema, prompt, seed) == value
