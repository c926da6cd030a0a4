"""The ``audio`` source plugin: a folder of WAV/FLAC/OGG files (a class per subfolder), or a
CSV/Parquet listing of paths and labels, decoded once into log-mel spectrograms.

``data: {source: data/clips, format: audio, options: {sample_rate: 16000, seconds: 1.0,
n_mels: 32, frames: 32}}``: each file is read with soundfile, mixed to mono (``mix: true``;
else a stereo file is an error naming it), resampled (``resample: true``; else a file at
another rate is an error naming it), cropped or padded to ``seconds``, and its log-mel
spectrogram (``n_mels`` x ``frames``, -80..0 dB of full scale) quantised to one uint8 column
per value (``mel_00000``..., mel bands by rows, time by columns), beside ``path``, ``label``,
the original ``duration``, ``sample_rate`` and ``channels``, ``bytes`` and the statistics
Monitor compares (``loudness`` in dBFS, ``peak``, ``zero_crossing_rate``,
``spectral_centroid`` in Hz, ``mel_mean``). The spectrogram is an image of one channel, so the
``image_cnn`` model trains on it as it is.

Decoding runs in ``workers`` processes and is indexed like the images source
(:mod:`blase.contrib._collection`): a re-read decodes only new and changed files. A
zero-byte or truncated file is an error naming it, or with ``bad_files: quarantine`` a row of
``outputs/rejects/<source>.csv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from blase.contrib._collection import CollectionOptions, CollectionReader
from blase.datasets import write_tone_clips

__all__ = ["AUDIO_SUFFIXES", "AudioOptions", "AudioReader"]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


class AudioOptions(CollectionOptions):
    """``data.options`` of an audio source."""

    sample_rate: int = Field(default=16000, ge=1000, le=192000, description="the rate every file must have (Hz)")
    seconds: float = Field(default=1.0, gt=0, le=60, description="files are cropped or padded to this length")
    n_mels: int = Field(default=32, ge=4, le=256, description="mel bands of the spectrogram")
    frames: int = Field(default=32, ge=4, le=1024, description="time steps of the spectrogram")
    resample: bool = Field(default=False, description="resample files at another rate (else: an error)")
    mix: bool = Field(default=False, description="average several channels to mono (else: an error)")


class AudioReader(CollectionReader):
    """Reads a folder of audio files as fixed-size log-mel spectrogram rows."""

    name = "audio"
    config_model = AudioOptions
    suffixes = AUDIO_SUFFIXES
    prefix = "mel_"
    meta: ClassVar[list[tuple[str, pa.DataType]]] = [
        ("duration", pa.float32()), ("sample_rate", pa.int32()), ("channels", pa.int32()),
        ("loudness", pa.float32()), ("peak", pa.float32()), ("zero_crossing_rate", pa.float32()),
        ("spectral_centroid", pa.float32())]

    def decoder(self) -> tuple[str, dict[str, Any]]:
        o = self.opts
        return "audio", {"sample_rate": o.sample_rate, "seconds": o.seconds, "n_mels": o.n_mels,
                         "frames": o.frames, "resample": o.resample, "mix": o.mix}

    def width(self) -> int:
        return self.opts.n_mels * self.opts.frames

    def statistics(self, values: np.ndarray) -> list[tuple[str, pa.Array]]:
        return [("mel_mean", pa.array(values.astype(np.float32).mean(axis=1), pa.float32()))]

    def example_files(self, root: Path) -> list[Path]:
        write_tone_clips(root, per_class=2, seed=0, sample_rate=self.opts.sample_rate)
        return sorted(root.rglob("*.wav"))
