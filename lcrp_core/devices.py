"""Device lists (`cpu`, `cuda:0,cuda:1`, `cpu,cpu`) and pinning one worker process to one GPU."""

from __future__ import annotations

import os
import re

from lcrp_core.errors import ConfigError

_DEVICE = re.compile(r"^(cpu|cuda:\d+)$")


def parse_devices(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"cuda:0,cuda:1"`` → ``["cuda:0", "cuda:1"]``; each item is ``cpu`` or ``cuda:<index>``."""
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s) for s in spec]
    if not items or any(not _DEVICE.match(s) for s in items):
        raise ConfigError(f"expected a comma-separated list of cpu or cuda:<index>, got {spec!r}",
                          key="devices")
    return items


def pin_device(device: str) -> str:
    """Pin this process to ``device`` (before torch is imported): ``cuda:3`` sets
    CUDA_VISIBLE_DEVICES=3 and returns ``cuda:0``, the name of that GPU inside this process."""
    if device == "cpu":
        return "cpu"
    os.environ["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1]
    return "cuda:0"
