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
    CUDA_VISIBLE_DEVICES=3 and returns ``cuda:0``, the name of that GPU inside this process.
    Where a scheduler already set CUDA_VISIBLE_DEVICES, ``cuda:N`` is the N-th GPU it lists."""
    if device == "cpu":
        return "cpu"
    index = int(device.split(":", 1)[1])
    visible = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if visible:
        if index >= len(visible):
            raise ConfigError(f"{device} is not among the {len(visible)} GPU(s) in "
                              f"CUDA_VISIBLE_DEVICES={','.join(visible)}", key="devices")
        os.environ["CUDA_VISIBLE_DEVICES"] = visible[index]
    else:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(index)
    return "cuda:0"
