"""Provenance: package versions and the code version, recorded with cache entries and trials."""

from __future__ import annotations

import functools
import subprocess
from importlib import metadata
from pathlib import Path

import lcrp_core

#: Distributions whose versions can change what a backend computes.
TRACKED_PACKAGES = (
    "numpy", "scipy", "opencv-python-headless", "pillow", "pycocotools",
    "torch", "torchvision", "sam2", "open_clip_torch", "optuna",
)


@functools.cache
def package_versions() -> dict[str, str]:
    """Installed versions of the packages in TRACKED_PACKAGES (absent ones are left out)."""
    out = {"lcrp-sweeps": lcrp_core.__version__}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@functools.cache
def code_version() -> str:
    """`<package version>+g<commit>[.dirty]` when run from a git checkout, else the package version."""
    root = Path(lcrp_core.__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=10", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "lcrp_core"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return lcrp_core.__version__
    return f"{lcrp_core.__version__}+g{sha}{'.dirty' if dirty else ''}"
