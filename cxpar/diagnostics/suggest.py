"""Did-you-mean suggestions (Elm's ``Suggest.hs``: names within a small edit distance)."""

from __future__ import annotations

from collections.abc import Iterable


def distance(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent transpositions)."""
    if a == b:
        return 0
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate within distance 1 (short names) or 2, else None."""
    limit = 1 if len(name) <= 3 else 2
    best: tuple[int, str] | None = None
    for c in sorted(set(candidates)):
        if c == name:
            continue
        d = distance(name.lower(), c.lower())
        if d <= limit and (best is None or d < best[0]):
            best = (d, c)
    return best[1] if best else None
