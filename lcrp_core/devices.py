"""Device lists (`cpu`, `cuda:0,cuda:1`, `cpu,cpu`, `cuda:0x4`) and pinning one worker process to
one GPU.

A device list names one worker slot per entry; ``DEVICEx<n>`` is ``n`` slots on that device (a
large GPU holds several SAM2 workers: ``cuda:0x4,cuda:1x4`` is eight workers, four per GPU).
Slots are interleaved over the devices (``cuda:0, cuda:1, cuda:0, ...``), so a run with fewer
waiting trials than slots still spreads its workers over every device.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from lcrp_core.errors import ConfigError

_DEVICE = re.compile(r"^(cpu|cuda:\d+)(?:x([1-9]\d*))?$")


def parse_devices(spec: str | Sequence[str], *, per_device: int = 1) -> list[str]:
    """``"cuda:0,cuda:1"`` → ``["cuda:0", "cuda:1"]``; each item is ``cpu`` or ``cuda:<index>``,
    optionally ``x<n>`` for ``n`` worker slots on it; ``per_device`` multiplies every item
    (``--workers-per-device``). The slots are interleaved over the devices."""
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s) for s in spec]
    matches = [_DEVICE.match(s) for s in items]
    if not items or any(m is None for m in matches):
        raise ConfigError(f"expected a comma-separated list of cpu or cuda:<index>, each "
                          f"optionally x<workers> (cuda:0x4), got {spec!r}", key="devices")
    if isinstance(per_device, bool) or not isinstance(per_device, int) or per_device < 1:
        raise ConfigError(f"expected an integer >= 1, got {per_device!r}", key="workers_per_device")
    counts: dict[str, int] = {}
    for m in matches:
        counts[m.group(1)] = counts.get(m.group(1), 0) + int(m.group(2) or 1) * per_device
    return interleave(counts)


def interleave(counts: dict[str, int]) -> list[str]:
    """``{"cuda:0": 2, "cuda:1": 1}`` → ``["cuda:0", "cuda:1", "cuda:0"]``."""
    out: list[str] = []
    left = dict(counts)
    while left:
        for device in list(left):
            out.append(device)
            left[device] -= 1
            if not left[device]:
                del left[device]
    return out


def compact_devices(slots: Sequence[str]) -> str:
    """The short form of a slot list: ``["cuda:0", "cuda:1", "cuda:0"]`` → ``"cuda:0x2,cuda:1"``."""
    counts: dict[str, int] = {}
    for s in slots:
        counts[s] = counts.get(s, 0) + 1
    return ",".join(d if n == 1 else f"{d}x{n}" for d, n in counts.items())


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
