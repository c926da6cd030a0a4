"""Tests of blase.resources: sizes, memory budgets and the resource sampler."""

from __future__ import annotations

import sys
import threading

import psutil
import pytest

from blase.errors import ResourceError
from blase.resources import (
    ResourceSample,
    ResourceSampler,
    format_size,
    memory_budget,
    parse_size,
    peak_rss,
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (1024, 1024),
        ("1024", 1024),
        ("2GB", 2_000_000_000),
        ("2 gb", 2_000_000_000),
        ("512MiB", 512 * 1024**2),
        ("1.5g", int(1.5 * 1024**3)),
        ("10k", 10 * 1024),
        ("3KB", 3000),
        ("1TiB", 1024**4),
        ("0", 0),
        (".5m", 512 * 1024),
    ],
)
def test_parse_size(spec, expected) -> None:
    assert parse_size(spec) == expected


@pytest.mark.parametrize("spec", ["", "GB", "2 parsecs", "-1GB", -5, "1.2.3MB", True, [1], None])
def test_parse_size_rejects_bad_input(spec) -> None:
    with pytest.raises(ResourceError) as info:
        parse_size(spec)
    assert repr(spec) in str(info.value) or str(spec) in str(info.value)


def test_format_size() -> None:
    assert format_size(0) == "0 B"
    assert format_size(999) == "999 B"
    assert format_size(1234) == "1.2 KB"
    assert format_size(1_234_567_890) == "1.2 GB"
    assert format_size(parse_size("2GB")) == "2.0 GB"
    assert format_size(-1500) == "-1.5 KB"


def test_memory_budget() -> None:
    available = psutil.virtual_memory().available
    auto = memory_budget(None)
    assert 0 < auto <= available
    assert abs(auto - available * 0.5) < available * 0.2  # memory moves a little meanwhile
    assert memory_budget("auto") > 0
    assert 0 < memory_budget("10%") < auto
    assert memory_budget("2GB") == 2_000_000_000
    for bad in ("0", "150%", "x%", "lots"):
        with pytest.raises(ResourceError):
            memory_budget(bad)


def test_peak_rss() -> None:
    assert peak_rss() >= psutil.Process().memory_info().rss * 0.5 > 0


def test_sampler_calls_back_at_its_interval(tmp_path) -> None:
    samples: list[ResourceSample] = []
    got_three = threading.Event()

    def collect(sample: ResourceSample) -> None:
        samples.append(sample)
        if len(samples) >= 3:
            got_three.set()

    with ResourceSampler(collect, 0.01, disk_path=tmp_path):
        assert got_three.wait(5)
    n = len(samples)
    s = samples[-1]
    assert s.rss_bytes > 0 and s.available_bytes > 0 and s.disk_free_bytes > 0
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        assert isinstance(s.gpu_mem_bytes, int) and s.gpu_mem_bytes >= 0
    else:  # no CUDA context made by this process: nothing to report, and no made-up 0
        assert s.gpu_mem_bytes is None and s.gpu_util is None
    assert set(s.to_json()) >= {"time", "cpu_percent", "rss_bytes", "gpu_util"}
    assert len(samples) == n  # stopped


def test_sampler_survives_a_failing_callback() -> None:
    calls = []

    def flaky(sample: ResourceSample) -> None:
        calls.append(sample)
        raise RuntimeError("callback bug")

    sampler = ResourceSampler(flaky, 0.01).start()
    try:
        for _ in range(500):
            if len(calls) >= 2:
                break
            threading.Event().wait(0.01)
    finally:
        sampler.stop()
    assert len(calls) >= 2


def test_sampler_rejects_bad_interval() -> None:
    with pytest.raises(ResourceError, match="interval"):
        ResourceSampler(lambda s: None, 0)
