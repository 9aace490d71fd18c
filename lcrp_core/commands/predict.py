"""`lcrp predict`: one configuration's masks for a whole dataset, in its benchmark's layout.

The configuration comes from a study's trial (``--study NAME [--trial N | --best]``), from a sweep
spec's base configuration (``--spec FILE``) or from a preset (``--preset NAME``), with ``--set
NAME=VALUE`` overrides. A study or spec also gives the dataset, backend, protocol and cache
folder (``--root``/``--split``/``--dataset`` override the dataset). With ground truth, the
written PNGs are read back and scored; for a trial's own configuration on its own dataset the
scores must equal the trial's stored J, F and J&F.
"""

from __future__ import annotations

import logging

from lcrp_core import schema

log = logging.getLogger("lcrp")

#: Trial scores compared with the re-scored predictions.
_CHECKED = (schema.JF, schema.J, schema.F)


def register(sub, common) -> None:
    p = sub.add_parser("predict", parents=[common], help="a configuration's masks for a whole dataset",
                       description="Run one configuration of the pipeline over every expression "
                                   "of a dataset from the feature cache and write the masks in the "
                                   "benchmark's layout (Annotations/<video>/<exp_id>/<frame>.png, "
                                   "or Ref-DAVIS17's anno_0..3 label maps) with predict.json. "
                                   "Resumable: finished videos are skipped.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--study", metavar="NAME", help="a sweep study: its trial's configuration")
    src.add_argument("--spec", metavar="FILE", help="a sweep spec: its base configuration")
    src.add_argument("--preset", metavar="NAME", help="a named preset (lcrp-ref-davis17, "
                                                      "lcrp-mevis, findtrack)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--trial", type=int, metavar="N", help="--study: trial number")
    which.add_argument("--best", action="store_true", help="--study: the best complete trial "
                                                           "(the default)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override a parameter (N, K, H, delta, w_text, w_quality, lam); repeatable")
    p.add_argument("--storage", default=None, help="--study: storage URL (default: found under studies/)")
    p.add_argument("--dataset", default=None, choices=["ref-davis17", "mevis", "ref-youtube-vos"],
                   help="dataset kind (default: the study's or spec's)")
    p.add_argument("--root", default=None, help="dataset root (default: the study's or spec's)")
    p.add_argument("--split", default=None, help="split (default: the study's or spec's, else the "
                                                 "kind's default)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--backend", default=None, help="--preset: classical | sam2-clip (default classical)")
    p.add_argument("--backend-config", default=None, metavar="FILE", help="--preset: backend config (YAML)")
    p.add_argument("--random-init", action="store_true",
                   help="--preset: random model weights (tests and speed measurements only)")
    p.add_argument("--devices", default="cpu", help="cpu, cpu,cpu or cuda:0,cuda:1 (one worker each)")
    p.add_argument("--cache-dir", default=None, help="feature cache (default: the study's or spec's, "
                                                     "else cache)")
    p.set_defaults(func=run)


def _overrides(items: list[str]) -> dict:
    import yaml

    from lcrp_core.errors import ConfigError

    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"expected NAME=VALUE, got {item!r}", key="--set")
        out[name.strip()] = yaml.safe_load(value)
    return out


def _source(args):
    """(spec or None, params, provenance, trial or None) from --study / --spec / --preset."""
    from lcrp_core.errors import ConfigError, DataError
    from lcrp_core.pipeline.params import Params, preset
    from lcrp_core.sweep.spec import load_sweep_spec, parse_sweep_spec

    if args.study is None and (args.trial is not None or args.best):
        raise ConfigError("--trial and --best choose a trial of --study", key="--trial")
    if args.study is None and args.storage:
        raise ConfigError("--storage goes with --study", key="--storage")
    if args.study is None:
        if args.spec is not None:
            spec = load_sweep_spec(args.spec, check_root=False)
            return spec, spec.base, {"spec": args.spec, "study": spec.study}, None
        return None, preset(args.preset), {"preset": args.preset}, None
    from lcrp_core.report.study import read_study

    study = read_study(args.study, storage=args.storage)
    stored = schema.study_spec(study.user_attrs)
    if stored is None:
        raise DataError(f"study {args.study!r} is not an lcrp sweep study (no {schema.SPEC})",
                        key=study.url)
    spec = parse_sweep_spec(stored, source=f"study {args.study}", check_root=False)
    if args.trial is not None:
        trial = study.trial(args.trial)
        if trial.state.name != "COMPLETE":
            raise DataError(f"trial {args.trial} of study {args.study!r} is {trial.state.name}, "
                            "not COMPLETE", key=study.url)
    else:
        done = [t for t in study.trials if t.state.name == "COMPLETE" and t.value is not None]
        if not done:
            raise DataError(f"study {args.study!r} has no complete trial", key=study.url)
        trial = max(done, key=lambda t: (t.value, -t.number))
    params = Params.from_mapping(trial.user_attrs[schema.PARAMS])
    return spec, params, {"study": args.study, "storage": study.url, "trial": trial.number}, trial


def _same_dataset(spec, job) -> bool:
    from pathlib import Path

    ds = spec.dataset
    return (ds.kind == job.dataset and ds.split == job.split and ds.videos == job.videos
            and Path(ds.root).resolve() == Path(job.root).resolve()
            and spec.backend.name == job.backend and dict(spec.backend.config) == dict(job.backend_config)
            and spec.backend.random_init == job.random_init)


def run(args) -> int:
    from lcrp_core.backends.base import backend_class, load_backend_config, resolve_config
    from lcrp_core.data import DEFAULT_SPLITS
    from lcrp_core.devices import parse_devices
    from lcrp_core.errors import ConfigError, LcrpError
    from lcrp_core.pipeline.params import Params
    from lcrp_core.pipeline.predict import PredictJob, predict, record_scores, score_predictions
    from lcrp_core.sweep.spec import DEFAULT_PROTOCOL

    spec, params, provenance, trial = _source(args)
    overrides = _overrides(args.set)
    if overrides:
        params = Params.from_mapping(overrides, base=params)
        provenance["set"] = overrides
    if spec is not None:
        if args.backend or args.backend_config or args.random_init:
            raise ConfigError("the backend comes from the study or spec; --backend, "
                              "--backend-config and --random-init go with --preset", key="--backend")
        kind = args.dataset or spec.dataset.kind
        root = args.root or spec.dataset.root
        same_kind = kind == spec.dataset.kind
        split = args.split or (spec.dataset.split if same_kind else DEFAULT_SPLITS[kind])
        videos = spec.dataset.videos if same_kind and args.root is None and args.split is None else None
        backend, backend_config, random_init = spec.backend.name, spec.backend.config, spec.backend.random_init
        protocol = spec.protocol if same_kind else DEFAULT_PROTOCOL.get(kind)
        cache_dir = args.cache_dir or spec.cache_dir
    else:
        if args.dataset is None or args.root is None:
            raise ConfigError("--preset needs --dataset and --root", key="--dataset")
        kind, root = args.dataset, args.root
        split, videos = args.split or DEFAULT_SPLITS[kind], None
        backend = args.backend or "classical"
        backend_config = resolve_config("--backend-config", backend_class(backend).Config,
                                        load_backend_config(args.backend_config))
        random_init, protocol = args.random_init, DEFAULT_PROTOCOL.get(kind)
        cache_dir = args.cache_dir or "cache"
    job = PredictJob(dataset=kind, root=str(root), split=split, backend=backend,
                     backend_config=dict(backend_config), params=params, out_dir=args.out,
                     cache_dir=cache_dir, random_init=random_init, videos=videos)
    report = predict(job, parse_devices(args.devices), provenance=provenance, progress=not args.quiet)
    ds = report.dataset
    print(f"predict: {len(ds)} videos ({report.videos_skipped} already done), "
          f"{ds.num_expressions} expressions -> {args.out}")
    if protocol is None or not all(v.has_gt for v in ds):
        print(f"{ds.kind} {ds.split}: no ground truth here; `lcrp submit {args.out} --benchmark "
              f"{ds.kind} --out FILE.zip` packs the predictions for the evaluation server")
        return 0
    summary = score_predictions(args.out, ds, protocol)
    print(f"{protocol}: J&F {summary.JF:.1f}   J {summary.J:.1f}   F {summary.F:.1f}")
    check = None
    if trial is not None and not overrides and _same_dataset(spec, job) and protocol == spec.protocol:
        stored = {k: float(trial.user_attrs[k]) for k in _CHECKED}
        got = {k: float(getattr(summary, k)) for k in _CHECKED}
        check = {"trial": trial.number, "stored": stored, "equal": stored == got}
        record_scores(args.out, summary, check)
        if stored != got:
            raise LcrpError(f"the predictions score J&F {got['JF']!r}, J {got['J']!r}, F {got['F']!r}; "
                            f"trial {trial.number} of {args.study!r} stored J&F {stored['JF']!r}, "
                            f"J {stored['J']!r}, F {stored['F']!r}")
        print(f"equal to trial {trial.number}'s stored J&F, J and F (study {args.study})")
        return 0
    record_scores(args.out, summary, check)
    return 0
