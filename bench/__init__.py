"""Speed benchmarks: ``python -m bench`` runs every ``bench_*.py`` module's ``main()``;
``python -m bench metrics pipeline`` runs only those. Results go to ``bench/results/<name>.json``."""

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def write_result(name: str, result: dict) -> Path:
    """Write one benchmark's result to ``bench/results/<name>.json`` (atomically)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out)
    return out
