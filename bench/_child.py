"""Child-process entry: ``python -m bench._child MODULE FUNC JSON_ARGS`` prints JSON."""

from __future__ import annotations

import importlib
import json
import sys


def main() -> None:
    module, func, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    mod = importlib.import_module(f"bench.{module}")
    result = getattr(mod, func)(**args)
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
