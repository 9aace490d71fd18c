"""Run the benchmarks: every bench/bench_*.py module's ``main()``, or only those named
(``python -m bench metrics`` runs bench_metrics). Options after one name go to that benchmark
(``python -m bench sam2 --device cuda --model-size large``; ``python -m bench sweep --workers 1,2,4``)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    available = sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py"))
    split = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    names, options = argv[:split] or available, argv[split:]
    unknown = [n for n in names if n not in available]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {available}", file=sys.stderr)
        return 2
    if options and len(names) != 1:
        print(f"options {options} need exactly one benchmark name before them", file=sys.stderr)
        return 2
    for name in names:
        print(f"== bench_{name}")
        module = importlib.import_module(f"bench.bench_{name}")
        module.main(options) if options else module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
