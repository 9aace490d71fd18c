"""`lcrp cache info|verify|clear`: inspect, check and empty the feature cache."""

from __future__ import annotations

import shutil
from pathlib import Path

from lcrp_core.commands import confirm
from lcrp_core.errors import LcrpError


def register(sub, common) -> None:
    p = sub.add_parser("cache", parents=[common], help="inspect, verify or clear the feature cache")
    csub = p.add_subparsers(dest="cache_command", metavar="ACTION")
    csub.required = True
    for name, helptext, func in (("info", "size per dataset and backend", info),
                                 ("verify", "check every entry's checksum", verify),
                                 ("clear", "delete cached entries", clear)):
        q = csub.add_parser(name, parents=[common], help=helptext)
        q.add_argument("--cache-dir", default="cache")
        if name == "clear":
            q.add_argument("--dataset", default=None, help="only this dataset folder")
            q.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        q.set_defaults(func=func)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def info(args) -> int:
    from lcrp_core.cache.extract import cache_summary

    rows = cache_summary(args.cache_dir)
    if not rows:
        print(f"{args.cache_dir}: empty")
        return 0
    width = max(len(r["dataset"]) for r in rows)
    print(f"{'dataset':<{width}}  {'backend scope':<34} {'videos':>6} {'entries':>8} {'size':>10}")
    for r in rows:
        print(f"{r['dataset']:<{width}}  {r['scope']:<34} {r['videos']:>6} {r['entries']:>8} "
              f"{_size(r['bytes']):>10}")
    print(f"total {_size(sum(r['bytes'] for r in rows))} in {sum(r['entries'] for r in rows)} entries")
    return 0


def verify(args) -> int:
    from lcrp_core.cache.store import CacheStore

    bad = total = 0
    for path, problem in CacheStore(args.cache_dir).verify():
        total += 1
        if problem:
            bad += 1
            print(f"{path}: {problem}")
    print(f"{total} entries checked, {bad} failed their checksum"
          + (" (they are recomputed on next use; `lcrp cache clear` removes everything)" if bad else ""))
    return 1 if bad else 0


def clear(args) -> int:
    root = Path(args.cache_dir)
    target = root / args.dataset if args.dataset else root
    if args.dataset and not target.is_dir():
        raise LcrpError(f"no cached dataset {args.dataset!r} (see `lcrp cache info`)", path=root)
    if not confirm(f"delete everything under {target}?", yes=args.yes):
        print("nothing deleted")
        return 1
    for child in (target.iterdir() if target.is_dir() else []):
        if child.name == "README.md" and target == root:
            continue
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    if args.dataset:
        target.rmdir()
    print(f"cleared {target}")
    return 0
