"""docs/cli.md's settings table lists every RunSettings field with its real sources."""

from __future__ import annotations

import re
from pathlib import Path

from cxpar.runtime.settings import RunSettings, setting_fields

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_settings_table_matches_the_fields() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"\| `([\w.]+)` \| (.*?) \| (.*?) \| (.*?) \|", line)
        if m:
            rows[m.group(1)] = m.group(2, 3, 4)
    fields = dict(setting_fields(RunSettings))
    assert set(rows) == set(fields)
    for name, f in fields.items():
        cli, env, toml = rows[name]
        meta = f.metadata
        if meta["cli"]:
            assert f"`{meta['cli'].split('/')[0]}`" in cli, name
        else:
            assert cli == "—", name
        assert env == (f"`{meta['env']}`" if meta["env"] else "—"), name
        if meta["toml"]:
            section_name, _, key = meta["toml"].partition(".")
            assert f"`[{section_name}]`" in toml and (not key or f"`{key}`" in toml), name
        else:
            assert toml == "—", name
