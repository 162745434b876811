"""Diagnostics for habits users bring from other languages (issue 15), through the real
CLI: each has a stable code, a span on the mistake and a `help:` that names the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import cxpar

#: name -> (source, [(severity, code, line, col, end_col, words in message), ...], help)
CASES: dict[str, tuple[str, list[tuple[str, str, int, int, int, str]], str]] = {
    "let": ("let x = 1;\nprint(x);\n",
            [("error", "CX116", 1, 1, 4, "CX has no `let`; use `var`")], "`var x = 1;`"),
    "const": ("const x = 1;\n", [("error", "CX116", 1, 1, 6, "CX has no `const`; use `var`")],
              "`var x = 1;`"),
    "let_in_for": ("for (let i = 0; i < 3; i++) { print(i); }\n",
                   [("error", "CX116", 1, 6, 9, "CX has no `let`")], "`var"),
    "strict_eq": ("var a = 1;\nvar b = 2;\nprint(a === b);\n",
                  [("error", "CX117", 3, 9, 12, "CX has no `===`; use `==`")], "`==`"),
    "strict_ne": ("var a = 1;\nprint(a !== 2);\n",
                  [("error", "CX117", 2, 9, 12, "CX has no `!==`; use `!=`")], "`!=`"),
    "strict_both": ("var a = 1;\nif (a === 1 && a !== 2) { print(a === 1, a !== 2); }\n",
                    [("error", "CX117", 2, 7, 10, "`===`"), ("error", "CX117", 2, 18, 21, "`!==`"),
                     ("error", "CX117", 2, 35, 38, "`===`"), ("error", "CX117", 2, 44, 47, "`!==`")],
                    "`==`"),
    "emit_value": ("var r = emit a.b { x: 1 };\non a.b (e) { print(e.x); }\n",
                   [("error", "CX118", 1, 9, 13, "`emit` is a statement and has no value")],
                   "emit a.b { ... };"),
    "emit_value_plain": ("var r = emit a.b;\non a.b (e) { print(e); }\n",
                         [("error", "CX118", 1, 9, 13, "`emit` is a statement")], "emit"),
    # the statement started lines above, after comments without `;`, `{` or `}`
    "emit_value_far": ("var r =\n" + "// a note\n" * 300 + "    emit a.b;\non a.b (e) { }\n",
                       [("error", "CX118", 302, 5, 9, "`emit` is a statement")], "emit"),
    "event_name": ("on a.b (e) { print(event.x); }\nemit a.b { x: 1 };\n",
                   [("error", "CX210", 1, 20, 27, "`event` is not defined in this handler; its "
                     "event is `e`")], "write `e.x`"),
    "event_as_e": ("on a.b (payload) { print(e.x); }\nemit a.b { x: 1 };\n",
                   [("error", "CX210", 1, 26, 29, "`e` is not defined in this handler; its "
                     "event is `payload`")], "write `payload.x`"),
    "implicit_event_as_msg": ("on a.b { print(msg); }\nemit a.b { x: 1 };\n",
                              [("error", "CX210", 1, 16, 19, "its event is `event`")],
                              "write `event`"),
    "reserved_typos": (
        "on a.b (e) { print(e); }\nthink { prompt: \"p\", timout: 5, retires: 2, "
        "handler: [a.b], concurency: 2, priorty: \"high\" };\n",
        [("warning", "CX313", 2, 22, 28, "did you mean `timeout`?"),
         ("warning", "CX313", 2, 33, 40, "did you mean `retries`?"),
         ("warning", "CX313", 2, 45, 52, "did you mean `handlers`?"),
         ("warning", "CX313", 2, 61, 71, "did you mean `concurrency`?"),
         ("warning", "CX313", 2, 76, 83, "did you mean `priority`?"),
         ("warning", "CX404", 1, 4, 7, "never triggered")], "reserved props are"),
    "host_call": ("var u = other.thing();\n",
                  [("error", "CX205", 1, 9, 20, "unknown function `other.thing`")],
                  "CX has no host functions"),
    "console_log": ('console.log("x");\n',
                    [("error", "CX205", 1, 1, 12, "unknown function `console.log`")],
                    "use `print(...)`"),
    "quoted_handler": ('on cache.ready (e) { print(e.data); }\n'
                       'learn { data: 1, handlers: [ "cache.ready" ] };\n',
                       [("error", "CX308", 2, 30, 43, "must be an event name, not a string")],
                       "drop the quotes: `cache.ready`"),
    "template_string": ("var n = 1;\nprint(`n is ${n}`);\n",
                        [("error", "CX103", 2, 7, 18, "CX has no template strings")],
                        '`"n is " + n`'),
    "interpolated_string": ('var n = 1;\nprint(f"n is {n}");\nprint($"n is {n}");\n',
                            [("error", "CX301", 2, 7, 18, "CX has no interpolated strings"),
                             ("error", "CX301", 3, 7, 18, "CX has no interpolated strings")],
                            '`"n is " + n`'),
    "builtin_arity": ("print(len());\nprint(keys({}, 1));\nprint(str(1, 2));\n",
                      [("error", "CX212", 1, 7, 12, "`len` takes 1 argument, got 0"),
                       ("error", "CX212", 2, 16, 17, "`keys` takes 1 argument, got 2"),
                       ("error", "CX212", 3, 14, 15, "`str` takes 1 argument, got 2")],
                      "`len(x)`"),
    "branch_without_return": (
        "on doc.score (e) { if (e.text) { return 1; } }\n"
        "var r = think { prompt: \"p\", text: \"t\", score: doc.score };\nprint(r.score);\n",
        [("warning", "CX408", 1, 4, 13, "this branch's value will be null")], "`return`"),
    "missing_comma": ("var o = {\n    a: 1\n    b: 2\n};\nprint(o);\n",
                      [("error", "CX115", 3, 5, 6, "expected `,`, found `b`")],
                      "add `,` after `1` on line 2"),
    "unterminated_string": ('print("hello);\nprint("next");\n',
                            [("error", "CX104", 1, 7, 15, "unterminated string")], 'close it'),
    "unterminated_last_line": ('var s = "abc; print(s);',
                               [("error", "CX104", 1, 9, 24, "unterminated string")], "close it"),
    "unterminated_then_comment": ('var s = "abc; print(s);\n// the end\n\n',
                                  [("error", "CX104", 1, 9, 24, "unterminated string")],
                                  "close it"),
    "try_catch": ('try {\n    var r = think { prompt: "p" };\n} catch (e) {\n    print(e);\n}\n'
                  'print("after");\n',
                  [("error", "CX120", 1, 1, 4, "CX has no `try`/`catch`")], "`_errors`"),
    "function": ("function total(a, b) {\n    return a + b;\n}\nprint(total(1, 2));\n",
                 [("error", "CX120", 1, 1, 9, "CX has no `function`")], "`on` handler"),
    "exponent": ("var n = 1e3;\nprint(n);\n",
                 [("error", "CX119", 1, 9, 12, "write `1000`")], "written out in digits"),
    "property_of_undeclared": ("var x = user.profile;\n",
                               [("error", "CX202", 1, 9, 21, "`user.profile` used as a value")],
                               "`user` is not declared"),
    "var_self": ("conscious A { realize(self) { var self = 1; } }\nnew A({});\n",
                 [("error", "CX211", 1, 35, 39, "`self` cannot be declared inside an entity")],
                 "pick another name"),
}


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], str]:
    root = tmp_path_factory.mktemp("habits")
    for name, (text, _want, _help) in CASES.items():
        (root / f"{name}.cx").write_text(text, encoding="utf-8")
    rows = [json.loads(line) for line in cxpar("check", "--format", "json", root).lines]
    return rows, cxpar("check", root).err


@pytest.mark.parametrize("name", list(CASES))
def test_habit_has_code_span_and_help(checked: tuple[list[dict], str], name: str) -> None:
    rows, text = checked
    _src, want, help_words = CASES[name]
    got = [r for r in rows if Path(r["file"]).stem == name]
    assert [(r["severity"], r["code"], r["line"], r["col"], r["end_col"]) for r in got] == \
        [w[:5] for w in want], got
    for r, w in zip(got, want, strict=True):
        assert w[5] in r["message"], r["message"]
    block = text[text.index(f"{name}.cx:"):]
    block = block[:block.find("\n\n")]
    head = text[:text.index(f"{name}.cx:")].rsplit("\n", 2)[-2]
    assert want[0][1] in head
    assert "= help: " in block and help_words in block, block


def test_unterminated_string_has_no_follow_on_end_of_file(checked: tuple[list[dict], str]) -> None:
    rows, _text = checked
    assert not any("end of file" in r["message"] for r in rows)


@pytest.mark.parametrize("latency", ["thnk=5", "think=5,infr=3"])
def test_misspelled_latency_service_is_a_usage_error(tmp_path: Path, latency: str) -> None:
    p = tmp_path / "p.cx"
    p.write_text('var r = think { prompt: "p" };\nprint(r.result);\n', encoding="utf-8")
    for command in ("run", "graph"):
        r = cxpar(command, "--latency", latency, p)
        assert r.code == 2, (command, r.err)
        assert "unknown service" in r.err and "did you mean" in r.err
    assert cxpar("run", "--clock", "virtual", "--latency", "think=5", p).code == 0
