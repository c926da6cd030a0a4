"""The ``image_cnn`` model plugin: a small convolutional network over the pixel columns the
``images`` source writes (``px_00000``..., row-major, channels last, 0-255).

``train: {model: image_cnn, epochs: 10, lr: 0.003, options: {widths: [16, 32], flip: true,
crop: 2}}``. Training is :class:`~blase.train.Train`'s (checkpoints, resume, early stopping,
seeds, device); the network scales pixels to [0, 1] itself, so no transform is needed, and
in training mode it augments each batch: a horizontal flip of half the images (``flip``)
and a random shift of up to ``crop`` pixels (padding by replication, then cropping back),
drawn from torch's generator, which Train seeds, so the same seed gives the same weights.
The package stores ``model.safetensors`` and a ``model.json`` naming this plugin: loading
rebuilds the network from the recorded options, never from code in the package.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from blase.model import (
    MODEL_WEIGHTS,
    FitContext,
    ModelKind,
    ModelSpec,
    TrainError,
    TrainingData,
    read_spec,
)
from blase.train import TorchModel

__all__ = ["ImageCNN", "ImageCNNOptions", "SmallCNN", "image_shape"]


class ImageCNNOptions(BaseModel):
    """``train.options`` of ``image_cnn``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: int | None = Field(default=None, description="1 (grey) or 3 (RGB); default: from the features")
    size: int | None = Field(default=None, ge=1, description="image side in pixels; default: from the features")
    widths: list[int] = Field(default_factory=lambda: [16, 32], min_length=1, max_length=5,
                              description="channels of each conv block (conv 3x3, batch norm, ReLU, max pool)")
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0, description="before the last layer")
    flip: bool = Field(default=False, description="training: flip half the images left-right")
    crop: int = Field(default=0, ge=0, description="training: shift images by up to this many pixels")


def image_shape(n_features: int, channels: int | None = None, size: int | None = None) -> tuple[int, int]:
    """``(channels, size)`` of square images flattened into ``n_features`` values.

    Raises
    ------
    TrainError
        When ``n_features`` is no ``channels x size x size``.
    """
    for c in ([channels] if channels else [1, 3]):
        s = size or math.isqrt(n_features // c)
        if c * s * s == n_features:
            return c, s
    raise TrainError(
        f"image_cnn needs the features to be the pixels of square images, but there are {n_features}",
        hint="keep only the px_ columns of the images source (transform: - op: drop, columns: [width, "
             "height, bytes, brightness, contrast, ...]), or set train.options.channels and size",
    )


class SmallCNN(nn.Module):
    """Conv blocks (3x3 conv, batch norm, ReLU, 2x2 max pool), global average pooling, a
    linear layer: ``[b, size*size*channels]`` uint8-valued floats to ``[b, n_outputs]``."""

    def __init__(self, channels: int, size: int, n_outputs: int, widths: list[int] | tuple[int, ...] = (16, 32),
                 dropout: float = 0.1, flip: bool = False, crop: int = 0) -> None:
        super().__init__()
        self.channels, self.size, self.flip, self.crop = channels, size, flip, crop
        layers: list[nn.Module] = []
        width_in, side = channels, size
        for width in widths:
            layers += [nn.Conv2d(width_in, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            if side >= 2:
                layers.append(nn.MaxPool2d(2))
                side //= 2
            width_in = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(width_in, n_outputs))

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """Flat pixel rows as ``[b, channels, size, size]`` in [0, 1]."""
        return x.reshape(-1, self.size, self.size, self.channels).permute(0, 3, 1, 2) / 255.0

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        if self.flip:
            flipped = torch.rand(images.shape[0], device=images.device) < 0.5
            images = torch.where(flipped[:, None, None, None], images.flip(-1), images)
        if self.crop:
            c, n = self.crop, self.size
            padded = nn.functional.pad(images, (c, c, c, c), mode="replicate")
            dy, dx = (int(v) for v in torch.randint(0, 2 * c + 1, (2,)))
            images = padded[:, :, dy:dy + n, dx:dx + n]
        return images

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer (one value per channel of the last block)."""
        images = self.images(x)
        if self.training:
            images = self.augment(images)
        return self.features(images).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x)[:, :, None, None])


class ImageCNN(TorchModel):
    """``train.model: image_cnn``: :class:`SmallCNN` trained by Blase's torch loop."""

    name = "image_cnn"
    config_model = ImageCNNOptions
    check_template = "images"

    @property
    def opts(self) -> ImageCNNOptions:
        return self.options if isinstance(self.options, ImageCNNOptions) else ImageCNNOptions()

    def build_network(self, data: TrainingData, ctx: FitContext) -> nn.Module:
        if isinstance(ctx.init, ImageCNN):  # blase update: the deployed network, its shape
            self.options = ctx.init.opts
            return ctx.init.network()
        channels, size = image_shape(data.n_features, self.opts.channels, self.opts.size)
        self.options = self.opts.model_copy(update={"channels": channels, "size": size})
        with torch.random.fork_rng():  # the first weights come from the project's seed
            torch.manual_seed(ctx.seed)
            return _build(self.opts, data.n_outputs)

    @classmethod
    def load(cls, folder: Path, spec: ModelSpec) -> ImageCNN:
        from safetensors.torch import load_file

        model = cls(ImageCNNOptions.model_validate(spec.options))
        module = _build(model.opts, spec.n_outputs)
        module.load_state_dict(load_file(str(Path(folder) / MODEL_WEIGHTS)))
        model.folder_, model.spec_, model.module_ = Path(folder), spec, module.eval()
        return model

    def describe(self, data: TrainingData) -> ModelSpec:
        return ModelKind.describe(self, data)  # a plugin's model.json, not the module's class path

    def network(self) -> nn.Module:
        if self.module_ is None:
            self.module_ = type(self).load(self.folder_, read_spec(self.folder_)).network()
        return self.module_

    def embeddings(self, x: np.ndarray) -> np.ndarray:
        """Penultimate-layer activations of a float32 batch of pixel rows (embedding drift)."""
        net = self.network()
        assert isinstance(net, SmallCNN)
        with torch.inference_mode():
            return net.embed(torch.from_numpy(np.asarray(x, dtype=np.float32))).numpy()


def _build(opts: ImageCNNOptions, n_outputs: int) -> SmallCNN:
    assert opts.channels is not None and opts.size is not None
    return SmallCNN(opts.channels, opts.size, n_outputs, widths=opts.widths, dropout=opts.dropout,
                    flip=opts.flip, crop=opts.crop)
