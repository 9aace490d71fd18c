"""`lcrp demo`: the whole product on the built-in synthetic benchmark, from a fresh clone.

1. generate the synthetic benchmark in the two layouts its studies read: Ref-DAVIS17 in
   ``data/synth/ref-davis17`` and MeViS in ``data/synth/mevis``;
2. extract the classical backend's features into ``cache/``;
3. run the seed's ablations (demo_specs/sweeps/demo_*.yaml: the (N, K) and (H, δ) points of
   Ref-DAVIS17, on the Ref-DAVIS17 layout with the Ref-DAVIS17 protocol, and of MeViS, on the MeViS layout
   with the per-expression protocol) as Optuna studies in ``studies/``;
4. render demo_specs/reports/demo.yaml into ``reports/demo/`` and print the ablation tables.

The specs ship inside the package (``lcrp_core/commands/demo_specs/``, read with
importlib.resources), so the demo runs from an installed wheel in any folder. Everything is
written under the working directory; a second run resumes and recomputes nothing.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from importlib import resources
from pathlib import Path

log = logging.getLogger("lcrp")

#: The demo's sweep specs, in the order they run.
DEMO_SPECS = ("demo_davis_nk", "demo_davis_hd", "demo_mevis_nk", "demo_mevis_hd")
DEMO_TPE = "demo_tpe"
DATA_DIR = Path("data/synth")


@contextmanager
def demo_spec(folder: str, name: str) -> Iterator[Path]:
    """The path of the demo's spec ``demo_specs/<folder>/<name>.yaml`` (folder: sweeps or
    reports), shipped as package data, while the block runs."""
    spec = resources.files(__package__).joinpath("demo_specs", folder, f"{name}.yaml")
    with resources.as_file(spec) as path:
        yield path


def layout_videos(kind: str, videos: int) -> int:
    """Videos of the demo's benchmark in layout ``kind``: all of them for MeViS, 3 in 5 for
    Ref-DAVIS17 (whose 4 expressions per object double the work per video; its validation split
    is 30 videos to MeViS valid_u's 50)."""
    return videos if kind == "mevis" else max(1, math.ceil(videos * 3 / 5))


def register(sub, common) -> None:
    p = sub.add_parser("demo", parents=[common], help="run the demo on the synthetic benchmark",
                       description="Generate the synthetic benchmark, extract features with the "
                                   "classical backend, run the seed's ablations as Optuna studies "
                                   "and render the report. A second run resumes.")
    p.add_argument("--out", default="reports/demo", help="report folder (default: %(default)s)")
    p.add_argument("--data", default=str(DATA_DIR), help="synthetic benchmark folder, one "
                   "subfolder per layout (default: %(default)s)")
    p.add_argument("--videos", type=int, default=10, help="synthetic videos of the MeViS layout; the "
                   "Ref-DAVIS17 layout has 3 in 5 of them (default: %(default)s)")
    p.add_argument("--frames", default="30-60", help="frames per video, N or MIN-MAX (default: %(default)s)")
    p.add_argument("--size", default="240x320", help="frame size HxW (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default: %(default)s)")
    p.add_argument("--devices", default=None, help="extraction and sweep workers, e.g. cpu or "
                   "cpu,cpu (default: cpu,cpu on a machine with two or more cores, else cpu)")
    p.add_argument("--tpe", action="store_true", help="also run the TPE study (demo_tpe)")
    p.set_defaults(func=run)


def run(args) -> int:
    from lcrp_core.cache.extract import ExtractJob, extract
    from lcrp_core.data.synth import generate
    from lcrp_core.devices import parse_devices
    from lcrp_core.errors import DataError
    from lcrp_core.report import build_report
    from lcrp_core.sweep.driver import run_sweep
    from lcrp_core.sweep.spec import load_sweep_spec

    progress = not args.quiet
    devices = parse_devices(args.devices or ("cpu,cpu" if (os.cpu_count() or 1) >= 2 else "cpu"))
    names = DEMO_SPECS + ((DEMO_TPE,) if args.tpe else ())
    # every spec is validated before anything runs; the benchmark's root is ours to create
    specs = []
    for name in names:
        with demo_spec("sweeps", name) as path:
            specs.append(load_sweep_spec(path, check_root=False))
    specs = [s.with_root(Path(args.data) / s.dataset.kind) for s in specs]
    # one benchmark (and one extraction) per layout the studies read
    layouts = {(s.dataset.kind, s.dataset.split): s for s in specs}

    data = Path(args.data)
    foreign = sorted(p.name for p in data.iterdir() if p.name not in {k for k, _ in layouts}) \
        if data.is_dir() else []
    if foreign:
        raise DataError(f"holds {foreign[0]!r}, not the demo's benchmark (one folder per layout: "
                        f"{', '.join(sorted(k for k, _ in layouts))}); choose another --data or "
                        "remove it", path=data)

    log.info("demo 1/4: synthetic benchmark -> %s", args.data)
    for (kind, split), spec in layouts.items():
        generate(spec.dataset.root, videos=layout_videos(kind, args.videos), seed=args.seed,
                 frames=args.frames, size=args.size, split=split, layout=kind, progress=progress)

    log.info("demo 2/4: features (%s backend) -> cache/", specs[0].backend.name)
    for (kind, split), spec in layouts.items():
        extract(ExtractJob(dataset=kind, root=spec.dataset.root, split=split,
                           backend=spec.backend.name, backend_config=spec.backend.config,
                           cache_dir=spec.cache_dir), devices, progress=progress)

    log.info("demo 3/4: sweeps %s -> studies/", ", ".join(names))
    for spec in specs:
        run_sweep(replace(spec, devices=tuple(devices)), progress=progress, verbose=args.verbose)

    log.info("demo 4/4: report -> %s", args.out)
    with demo_spec("reports", "demo") as path:
        report = build_report(path, out_dir=args.out)
    if args.tpe:
        with demo_spec("reports", DEMO_TPE) as path:
            tpe = build_report(path, out_dir=Path(args.out).parent / "demo_tpe")
        print(f"TPE report: {Path(tpe.out_dir) / 'index.html'}")
    for table in ("demo_davis_ablation", "demo_mevis_ablation"):
        text = Path(report.out_dir) / f"{table}.txt"
        print(text.read_text(encoding="utf-8") if text.is_file() else f"({table}: not rendered)")
    print(f"report: {Path(report.out_dir) / 'index.html'}")
    return 0
