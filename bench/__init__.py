"""cxpar benchmarks (GitHub issue 7): ``python -m bench [--quick] [--json out.json]``.

Every benchmark reports its value next to a baseline measured in the same run, with
the ratio, as the median of several repetitions and their min–max spread. See
``docs/performance.md`` for what each number means.
"""
