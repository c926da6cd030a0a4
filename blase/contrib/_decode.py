"""Decoding one media file, in the worker processes of the ``images`` and ``audio`` sources: a
light module (numpy, xxhash, and Pillow or soundfile when used), so a worker starts fast.

Each decoder returns ``{"hash": ..., "values": bytes, <manifest columns>}`` for a file it
read, or ``{"hash": ..., "error": "what is wrong with it"}``."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

__all__ = ["DECODERS", "decode_audio", "decode_image", "decode_many", "log_mel"]


def _to_mode(im: Any, mode: str) -> Any:
    """``im`` as an 8-bit ``L`` or ``RGB`` image: 16/32-bit greys are scaled to 8 bits,
    transparency is laid over white, palette and CMYK images are converted."""
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        im = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im.convert("RGBA"))
    return im.convert(mode) if im.mode != mode else im


def decode_image(path: str, size: int, mode: str) -> dict[str, Any]:
    """Read, hash, decode and resize one file: ``{"hash", "width", "height", "pixels"}``,
    or ``{"hash", "error"}`` saying what is wrong with it. Runs in the worker processes."""
    from PIL import Image, UnidentifiedImageError

    data, digest = _read(path)
    if not data:
        return {"hash": digest, "error": "is empty (0 bytes)"}
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            width, height = im.size
            small = _to_mode(im, mode).resize((size, size), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return {"hash": digest, "error": f"cannot be decoded as an image ({type(exc).__name__}: {exc})"}
    pixels = np.asarray(small, dtype=np.uint8)
    return {"hash": digest, "width": width, "height": height, "values": pixels.tobytes()}


def _read(path: str) -> tuple[bytes, str]:
    import xxhash

    with open(path, "rb") as fh:
        data = fh.read()
    return data, xxhash.xxh3_128_hexdigest(data)


def _mel_filters(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular filters on the mel scale (HTK's formula), ``[n_mels, n_fft // 2 + 1]``."""
    def mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    points = 700.0 * (10 ** (np.linspace(0, mel(np.array(sample_rate / 2)), n_mels + 2) / 2595.0) - 1.0)
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    low, mid, high = points[:-2, None], points[1:-1, None], points[2:, None]
    up = (freqs[None, :] - low) / np.maximum(mid - low, 1e-9)
    down = (high - freqs[None, :]) / np.maximum(high - mid, 1e-9)
    return np.maximum(0.0, np.minimum(up, down))


def log_mel(signal: np.ndarray, sample_rate: int, n_mels: int, frames: int, n_fft: int = 512) -> np.ndarray:
    """The log-mel spectrogram of a mono float signal, ``[n_mels, frames]`` in dB relative to
    full scale (a full-scale sine peaks near 0 dB), ``frames`` Hann windows spread evenly."""
    hop = max(1, len(signal) // frames)
    padded = np.pad(signal, (n_fft // 2, n_fft // 2 + hop * frames))
    starts = np.arange(frames) * hop
    window = np.hanning(n_fft).astype(np.float32)
    blocks = padded[starts[:, None] + np.arange(n_fft)[None, :]] * window
    power = np.abs(np.fft.rfft(blocks, axis=1)) ** 2 / (window.sum() / 2) ** 2
    mel = _mel_filters(sample_rate, n_fft, n_mels) @ power.T
    return 10.0 * np.log10(np.maximum(mel, 1e-10))


def decode_audio(path: str, sample_rate: int, seconds: float, n_mels: int, frames: int,
                 resample: bool, mix: bool) -> dict[str, Any]:
    """Read a WAV/FLAC/OGG file, check (or convert) its rate and channels, crop or pad it to
    ``seconds``, and quantise its log-mel spectrogram (-80..0 dB) to uint8 ``[n_mels, frames]``."""
    import soundfile

    data, digest = _read(path)
    if not data:
        return {"hash": digest, "error": "is empty (0 bytes)"}
    try:
        signal, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, ValueError, TypeError) as exc:
        return {"hash": digest, "error": f"cannot be decoded as audio ({type(exc).__name__}: {exc})"}
    channels = signal.shape[1]
    if channels > 1 and not mix:
        return {"hash": digest, "error": f"has {channels} channels, not 1: set data.options.mix: true to "
                                         "average them to mono, or convert the file"}
    if rate != sample_rate and not resample:
        return {"hash": digest, "error": f"has a sample rate of {rate} Hz, not {sample_rate}: set "
                                         "data.options.resample: true to resample it, or convert the file"}
    mono = signal.mean(axis=1)
    duration = len(mono) / rate
    if rate != sample_rate:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(int(rate), int(sample_rate))
        mono = resample_poly(mono, sample_rate // g, rate // g).astype(np.float32)
    n = round(seconds * sample_rate)
    mono = mono[:n] if len(mono) >= n else np.pad(mono, (0, n - len(mono)))
    # the power spectrum of the Hann-windowed clip: its centroid is a pure tone's pitch
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono)))) ** 2 if len(mono) else np.zeros(1)
    freqs = np.fft.rfftfreq(len(mono), 1.0 / sample_rate) if len(mono) else np.zeros(1)
    rms = float(np.sqrt(np.mean(mono.astype(np.float64) ** 2))) if len(mono) else 0.0
    mel = log_mel(mono, sample_rate, n_mels, frames)
    values = np.round(np.clip((mel + 80.0) / 80.0, 0.0, 1.0) * 255.0).astype(np.uint8)
    return {"hash": digest, "values": values.tobytes(), "duration": duration, "sample_rate": int(rate),
            "channels": int(channels), "loudness": 20.0 * np.log10(max(rms, 1e-10)),
            "peak": float(np.abs(mono).max(initial=0.0)),
            "zero_crossing_rate": float(np.mean(np.abs(np.diff(np.sign(mono))) > 0)) if len(mono) > 1 else 0.0,
            "spectral_centroid": float((freqs * spectrum).sum() / max(spectrum.sum(), 1e-12))}


#: The decoders by kind (what :func:`decode_many` runs in the workers).
DECODERS = {"image": decode_image, "audio": decode_audio}


def decode_many(kind: str, paths: list[str], params: dict[str, Any]) -> list[dict[str, Any]]:
    decode = DECODERS[kind]
    return [decode(p, **params) for p in paths]
