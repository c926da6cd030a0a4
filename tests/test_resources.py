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
    release_memory,
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


def _rss() -> int:
    return psutil.Process().memory_info().rss


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="MADV_PAGEOUT and malloc_trim are Linux's")
def test_release_memory_gives_back_file_pages_and_keeps_their_content(tmp_path) -> None:
    """A file mapped read-only and read through (as a library's code is after a step ran it)
    stops counting in RSS after release_memory, and reads back the same afterwards."""
    import hashlib
    import mmap

    import numpy as np

    path = tmp_path / "pages.bin"
    path.write_bytes(np.random.default_rng(0).integers(0, 255, 64 << 20, dtype=np.uint8).tobytes())
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
        assert hashlib.sha256(view).hexdigest() == expected  # every page touched: resident
        released = release_memory()
        assert released is not None
        assert "pageout_file_pages" in released.actions and "malloc_trim" in released.actions
        assert released.rss_before - released.rss_after >= 48 << 20, released
        assert abs(released.rss_after - _rss()) < 32 << 20
        assert hashlib.sha256(view).hexdigest() == expected  # read back from the file


def test_release_memory_does_nothing_below_its_threshold() -> None:
    assert release_memory(above=1 << 50) is None
    released = release_memory()
    assert released is not None and released.released >= 0 and released.to_json()["actions"][0] == "gc"
