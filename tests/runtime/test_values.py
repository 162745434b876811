"""Values and JS-like semantics (SPEC §4.1, rules 22–26, 38–40)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxpar.runtime import CxRuntimeError, Instance
from cxpar.runtime import values as V

NUMBERS = [
    (3.0, "3"), (1.5, "1.5"), (0.1 + 0.2, "0.30000000000000004"), (1e-7, "1e-7"),
    (1.5e-7, "1.5e-7"), (0.000001, "0.000001"), (1e-6 * 1.5, "0.0000015"), (-0.0, "0"),
    (0.0, "0"), (-3.0, "-3"), (100.0, "100"), (1e21, "1e+21"), (1.5e21, "1.5e+21"),
    (123456789012345680000.0, "123456789012345680000"), (2 ** 53, "9007199254740992"),
    (-1.25, "-1.25"), (0.5, "0.5"), (123.456, "123.456"), (1e300, "1e+300"),
    (5e-324, "5e-324"), (-1e-7, "-1e-7"), (0.1, "0.1"), (1 / 3, "0.3333333333333333"),
    (float("inf"), "Infinity"), (float("-inf"), "-Infinity"), (float("nan"), "NaN"), (7, "7"),
]


@pytest.mark.parametrize(("x", "s"), NUMBERS)
def test_number_printing(x: float, s: str) -> None:
    assert V.fmt_num(x) == s
    assert V.to_str(x) == s


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_number_printing_round_trips(x: float) -> None:
    s = V.fmt_num(x)
    assert float(s) == x or (x == 0 and s == "0")
    assert "e" not in s or abs(x) < 1e-6 or abs(x) >= 1e21


def test_json_format() -> None:
    v = {"a": 1.0, "b": [1.0, 2.5], "s": "héllo \"q\"", "n": None, "t": True,
         "x": float("nan"), "i": float("inf"), "z": -0.0}
    assert V.to_json(v) == ('{"a": 1, "b": [1, 2.5], "s": "héllo \\"q\\"", "n": null, '
                            '"t": true, "x": null, "i": null, "z": 0}')
    inst = Instance("User", {"name": "ann"})
    assert V.to_json([inst]) == '[{"name": "ann"}]'
    assert V.to_str("raw") == "raw"
    assert V.to_str(None) == "null" and V.to_str(False) == "false"
    assert V.to_str({}) == "{}" and V.to_str([]) == "[]"


def test_add_and_concat() -> None:
    assert V.add(1.0, 2.0) == 3.0
    assert V.add("a", 1.0) == "a1"
    assert V.add(0.1, "x") == "0.1x"
    assert V.add("n=", None) == "n=null"
    assert V.add("o=", {"a": 1.0}) == 'o={"a": 1}'
    assert V.add("x", 1e-7) == "x1e-7"
    for a, b in [(1.0, None), (True, 1.0), ([], []), ({}, 1.0)]:
        with pytest.raises(CxRuntimeError) as e:
            V.add(a, b, 7)
        assert e.value.span_id == 7


def test_arithmetic_errors() -> None:
    with pytest.raises(CxRuntimeError, match="division by zero"):
        V.div(1.0, 0.0, 3)
    with pytest.raises(CxRuntimeError, match="division by zero"):
        V.mod(1.0, 0.0, 3)
    with pytest.raises(CxRuntimeError):
        V.sub("a", 1.0)
    with pytest.raises(CxRuntimeError):
        V.mul(None, 1.0)
    with pytest.raises(CxRuntimeError):
        V.neg("a")
    assert V.mod(-7.0, 3.0) == -1.0 and V.mod(7.0, -3.0) == 1.0
    # JavaScript: Infinity % x is NaN (not a crash); x % Infinity is x.
    assert math.isnan(V.mod(math.inf, 3.0)) and math.isnan(V.mod(-math.inf, -2.0))
    assert V.mod(5.0, math.inf) == 5.0 and math.isnan(V.mod(math.nan, 2.0))
    assert V.div(7.0, 2.0) == 3.5
    assert V.neg(2.0) == -2.0 and V.pos(2.0) == 2.0


def test_comparisons() -> None:
    assert V.lt(1.0, 2.0) and V.ge(2.0, 2.0) and V.gt("b", "a") and V.le("a", "a")
    assert V.lt("Z", "a")  # code-point order
    with pytest.raises(CxRuntimeError):
        V.lt(1.0, "2")
    with pytest.raises(CxRuntimeError):
        V.gt(None, None)


def test_truthy() -> None:
    for v in (False, None, 0.0, -0.0, float("nan"), ""):
        assert not V.truthy(v) and V.not_(v)
    for v in (True, 1.0, "0", [], {}, Instance("A", {}), -1.0):
        assert V.truthy(v)


def test_equality() -> None:
    assert not V.eq(1.0, "1")
    assert not V.eq(True, 1.0) and not V.eq(0.0, False) and not V.eq(None, False)
    assert V.eq({"a": 1.0, "b": [1.0, {"c": None}]}, {"b": [1.0, {"c": None}], "a": 1.0})
    assert not V.eq({"a": 1.0}, {"a": 1.0, "b": 2.0})
    assert V.eq([1.0, 2.0], [1.0, 2.0]) and not V.eq([1.0, 2.0], [2.0, 1.0])
    a, b = Instance("A", {}), Instance("A", {})
    assert V.eq(a, a) and not V.eq(a, b) and V.ne(a, b)
    nan = float("nan")
    assert not V.eq(nan, nan)
    assert V.eq(1, 1.0)


def test_num() -> None:
    assert V.num(3.5) == 3.5
    assert V.num(" 42 ") == 42.0 and V.num("-1.5") == -1.5 and V.num("+2") == 2.0
    for s in ("", "1e3", "inf", "NaN", "1.", ".5", "0x10", "1 2", None, True, []):
        assert V.num(s) is None


def test_properties_and_indexes() -> None:
    o = {"a": 1.0}
    assert V.get_prop(o, "a") == 1.0 and V.get_prop(o, "zz") is None
    assert V.get_prop("héllo", "length") == 5.0 and V.get_prop([1, 2], "length") == 2.0
    assert V.get_prop(3.0, "x") is None and V.get_prop(True, "length") is None
    with pytest.raises(CxRuntimeError, match="of null"):
        V.get_prop(None, "x", 4)
    arr = [1.0, 2.0]
    assert V.get_index(arr, 1.0) == 2.0 and V.get_index(arr, 5.0) is None
    assert V.get_index(arr, -1.0) is None
    with pytest.raises(CxRuntimeError):
        V.get_index(arr, 0.5)
    V.set_index(arr, 2.0, 3.0)
    assert arr == [1.0, 2.0, 3.0]
    with pytest.raises(CxRuntimeError):
        V.set_index(arr, 9.0, 0.0)
    assert V.get_index("abc", 1.0) == "b"
    assert V.get_index({"1": "x"}, 1.0) == "x"
    inst = Instance("A", {"k": 1.0})
    V.set_prop(inst, "j", 2.0)
    assert V.get_prop(inst, "j") == 2.0 and V.get_index(inst, "k") == 1.0
    with pytest.raises(CxRuntimeError):
        V.set_prop(None, "x", 1.0)
    with pytest.raises(CxRuntimeError):
        V.get_index(None, 0.0)


def test_builtins() -> None:
    assert V.len_("héllo") == 5.0 and V.len_([1]) == 1.0 and V.len_({"a": 1, "b": 2}) == 2.0
    with pytest.raises(CxRuntimeError):
        V.len_(3.0)
    assert V.keys({"b": 1, "a": 2}) == ["b", "a"]
    assert V.keys(Instance("A", {"x": 1})) == ["x"]
    with pytest.raises(CxRuntimeError):
        V.keys([1])
    assert V.str_(1.5) == "1.5" and V.str_({"a": "b"}) == '{"a": "b"}'
    assert V.iterate("ab") == ["a", "b"] and V.iterate({"x": 1}) == ["x"]
    with pytest.raises(CxRuntimeError):
        V.iterate(1.0)
    assert V.to_request(Instance("A", {"x": 1.0})) == {"x": 1.0}
    assert V.to_request(5.0) == {"value": 5.0}
    assert not math.isnan(V.mod(5.5, 2.0))
