"""The audio source: log-mel features against an independent oracle, rates, channels, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import soundfile

from blase.contrib._audio import AudioOptions, AudioReader
from blase.contrib._decode import log_mel
from blase.errors import ExtractError


def _tone(path: Path, freq: float, *, rate: int = 8000, seconds: float = 0.5, channels: int = 1,
          fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(rate * seconds)) / rate
    wave = 0.5 * np.sin(2 * np.pi * freq * t)
    soundfile.write(path, np.column_stack([wave] * channels) if channels > 1 else wave, rate, format=fmt)


def _read(root: Path, **options) -> pa.Table:
    reader = AudioReader(AudioOptions(workers=1, sample_rate=8000, seconds=0.5, n_mels=8, frames=8, **options))
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return pa.Table.from_batches(list(reader.read_files(files, root=root, batch_rows=100)))


def test_tones_give_labels_durations_loudness_and_a_spectrogram_peaking_at_their_pitch(tmp_path):
    _tone(tmp_path / "clips" / "low" / "a.wav", 200)
    _tone(tmp_path / "clips" / "high" / "b.flac", 3000, fmt="FLAC")
    table = _read(tmp_path / "clips")
    rows = {r["label"]: r for r in table.to_pylist()}
    assert set(rows) == {"low", "high"} and rows["low"]["duration"] == pytest.approx(0.5)
    # a sine of amplitude 0.5 has an RMS of 0.5 / sqrt(2): -9.03 dBFS
    assert rows["low"]["loudness"] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.05)
    assert rows["low"]["spectral_centroid"] == pytest.approx(200, rel=0.05)
    assert rows["high"]["spectral_centroid"] == pytest.approx(3000, rel=0.05)
    assert {len(v) for v in table["mel"].to_pylist()} == {64}  # one tensor column, 8 x 8 bytes a row
    low = np.frombuffer(rows["low"]["mel"], dtype=np.uint8).reshape(8, 8)
    high = np.frombuffer(rows["high"]["mel"], dtype=np.uint8).reshape(8, 8)
    assert low.mean(axis=1).argmax() < high.mean(axis=1).argmax()  # energy in a lower mel band


@pytest.mark.parametrize("amplitude", [1.0, 0.1])
def test_log_mel_puts_a_sine_in_its_band_at_its_level(amplitude):
    """The oracle is physics: a sine of amplitude A at a band's centre frequency shows in that
    band at 20 log10(A) dBFS (within the Hann window's leakage, < 2 dB), and nowhere near it
    in bands far away."""
    rate, n_mels = 16000, 20
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    centres = 700 * (10 ** (np.linspace(0, mel(rate / 2), n_mels + 2) / 2595) - 1)[1:-1]
    band = 12
    t = np.arange(rate) / rate
    db = log_mel((amplitude * np.sin(2 * np.pi * centres[band] * t)).astype(np.float32), rate, n_mels, 10, n_fft=512)
    level = db[:, 2:-2].mean(axis=1)  # frames away from the padded ends
    assert level.argmax() == band
    assert abs(level[band] - 20 * np.log10(amplitude)) < 2.0
    assert level[2] < level[band] - 40


def test_another_rate_or_stereo_is_an_error_naming_the_file_and_the_option(tmp_path):
    _tone(tmp_path / "a" / "x" / "fast.wav", 440, rate=16000)
    with pytest.raises(ExtractError, match=r"fast.wav has a sample rate of 16000 Hz, not 8000") as err:
        _read(tmp_path / "a")
    assert "resample: true" in err.value.message
    row = _read(tmp_path / "a", resample=True).to_pylist()[0]
    assert row["sample_rate"] == 16000 and row["spectral_centroid"] == pytest.approx(440, rel=0.05)
    _tone(tmp_path / "b" / "x" / "stereo.wav", 440, channels=2)
    with pytest.raises(ExtractError, match=r"stereo.wav has 2 channels, not 1.*mix: true"):
        _read(tmp_path / "b")
    assert _read(tmp_path / "b", mix=True).to_pylist()[0]["channels"] == 2


def test_a_truncated_flac_is_an_error_or_quarantined(tmp_path):
    _tone(tmp_path / "c" / "x" / "good.flac", 300, fmt="FLAC")
    _tone(tmp_path / "c" / "x" / "cut.flac", 300, fmt="FLAC")
    cut = tmp_path / "c" / "x" / "cut.flac"
    cut.write_bytes(cut.read_bytes()[:60])
    with pytest.raises(ExtractError, match=r"cut.flac cannot be decoded as audio") as err:
        _read(tmp_path / "c")
    assert "bad_files: quarantine" in err.value.hint
    reader = AudioReader(AudioOptions(workers=1, sample_rate=8000, seconds=0.5, n_mels=8, frames=8,
                                      bad_files="quarantine"))
    files = sorted((tmp_path / "c").rglob("*.flac"))
    table = pa.Table.from_batches(list(reader.read_files(files, root=tmp_path / "c", batch_rows=10)))
    assert table["path"].to_pylist() == ["x/good.flac"]
    assert [Path(p).name for p, _ in reader.rejected] == ["cut.flac"]
