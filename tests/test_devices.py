import os

import pytest

from lcrp_core.devices import compact_devices, parse_devices, pin_device
from lcrp_core.errors import ConfigError


def test_parse_devices():
    assert parse_devices("cuda:0,cuda:1") == ["cuda:0", "cuda:1"]
    assert parse_devices(["cpu", "cpu"]) == ["cpu", "cpu"]
    for bad in ("gpu", "cuda", "cuda:x", "cpu,,cpu", "", "cuda:0x0", "cuda:0x", "cpux-1"):
        with pytest.raises(ConfigError, match="devices"):
            parse_devices(bad)


def test_pin_device_respects_a_scheduler_s_visible_devices(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert pin_device("cpu") == "cpu" and "CUDA_VISIBLE_DEVICES" not in os.environ
    assert pin_device("cuda:3") == "cuda:0" and os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    assert pin_device("cuda:1") == "cuda:0" and os.environ["CUDA_VISIBLE_DEVICES"] == "6"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    with pytest.raises(ConfigError, match="cuda:2 is not among the 2 GPU"):
        pin_device("cuda:2")


def test_several_workers_per_device_are_interleaved_slots():
    assert parse_devices("cuda:0x4,cuda:1x4") == ["cuda:0", "cuda:1"] * 4
    assert parse_devices("cuda:0x2,cuda:1") == ["cuda:0", "cuda:1", "cuda:0"]
    assert parse_devices("cpu,cpu") == parse_devices("cpux2") == ["cpu", "cpu"]
    assert parse_devices(["cuda:0", "cuda:1"], per_device=3) == ["cuda:0", "cuda:1"] * 3
    assert parse_devices("cuda:0x2", per_device=2) == ["cuda:0"] * 4
    assert compact_devices(parse_devices("cuda:0x4,cuda:1x2,cpu")) == "cuda:0x4,cuda:1x2,cpu"
    with pytest.raises(ConfigError, match="workers_per_device: expected an integer >= 1, got 0"):
        parse_devices("cpu", per_device=0)
