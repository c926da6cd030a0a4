"""The ``image_errors`` step plugin: after evaluate, a grid of the test images the model got
wrong (``misclassified.png``, each titled ``true -> predicted``), from the pixels the
``images`` source extracted. ``plugins: [image_errors]`` (options: ``max_images``, ``columns``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from blase.errors import BlaseError
from blase.prepare import tensor_block
from blase.steps import Evaluation, Extracted, Step, StepContext, StepOutput, StepResult

__all__ = ["ImageErrorOptions", "ImageErrors", "ImageErrorsStep", "misclassified_pixels"]


class ImageErrorOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_images: int = Field(default=36, ge=1, le=400, description="misclassified images drawn at most")
    columns: int = Field(default=6, ge=1, le=40, description="images per row of the grid")


@dataclass(kw_only=True)
class ImageErrors(StepOutput):
    """The grid (empty name when nothing was misclassified) and how many images it shows."""

    grid: str = ""
    shown: int = 0
    misclassified: int = 0


def misclassified_pixels(predictions: Path, data_dir: Path, limit: int) -> tuple[int, list[Any], np.ndarray]:
    """How many rows of ``predictions`` are wrong, and (truth, prediction) and the pixel rows
    of the first ``limit`` of them, read from the extracted Parquet parts by row position."""
    import pyarrow.parquet as pq

    table = pq.read_table(predictions, columns=["row_id", "truth", "prediction"])
    truth, pred = table.column("truth").to_pylist(), table.column("prediction").to_pylist()
    wrong = [i for i, (t, p) in enumerate(zip(truth, pred, strict=True)) if t != p]
    picked = wrong[:limit]
    ids = np.asarray(table.column("row_id").to_numpy())[picked]
    pairs = [(truth[i], pred[i]) for i in picked]
    order = np.argsort(ids, kind="stable")
    rows: list[np.ndarray] = [np.empty(0)] * len(ids)
    at, k = 0, 0
    for part in sorted(data_dir.glob("*.parquet")):
        meta = pq.ParquetFile(part)
        n = meta.metadata.num_rows
        wanted = [j for j in order[k:] if ids[j] < at + n]
        if wanted:
            if "px" not in meta.schema_arrow.names:
                raise BlaseError(f"{part} has no px column (the pixels)", hint="image_errors needs the images source")
            block = tensor_block(meta.read(columns=["px"]).column("px"))
            for j in wanted:
                rows[j] = block[int(ids[j]) - at]
            k += len(wanted)
        at += n
    return len(wrong), pairs, np.stack(rows) if rows else np.empty((0, 0), np.uint8)


class ImageErrorsStep(Step):
    """Draw the misclassified test images of an images project."""

    name = "image_errors"
    needs = ("extract", "evaluate")
    after = "evaluate"
    output_type = ImageErrors
    config_model = ImageErrorOptions
    public = True
    check_template = "images"

    def run(self, inputs: Mapping[str, StepOutput], out_dir: Path, ctx: StepContext) -> StepResult:
        opts = self.options if isinstance(self.options, ImageErrorOptions) else ImageErrorOptions()
        evaluation, extracted = inputs["evaluate"], inputs["extract"]
        assert isinstance(evaluation, Evaluation) and isinstance(extracted, Extracted)
        if evaluation.predictions_file is None or "truth" not in _columns(evaluation.predictions_file):
            raise BlaseError("image_errors needs the predictions of a classifier",
                             hint="remove image_errors from plugins: in blase.yaml for a regression")
        wrong, pairs, pixels = misclassified_pixels(evaluation.predictions_file, extracted.data_dir, opts.max_images)
        channels = 3 if "mean_r" in extracted.schema else 1
        output = ImageErrors(root=out_dir, shown=len(pairs), misclassified=wrong)
        if pairs:
            _draw(pixels, pairs, channels, opts.columns, out_dir / "misclassified.png")
            output.grid = "misclassified.png"
        return StepResult(step=self.name, output=output, outputs={"misclassified": str(wrong)},
                          details={"misclassified": wrong, "shown": len(pairs)})


def _columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_schema(path).names


def _draw(pixels: np.ndarray, pairs: list[Any], channels: int, columns: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = math.isqrt(pixels.shape[1] // channels)
    cols = min(columns, len(pairs))
    rows = -(-len(pairs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, (truth, pred) in zip(axes.flat, pixels, pairs, strict=False):
        shaped = image.reshape(size, size, channels)
        ax.imshow(shaped[:, :, 0] if channels == 1 else shaped, cmap="gray" if channels == 1 else None,
                  vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"{truth} -> {pred}", fontsize=8)
    fig.suptitle("Misclassified test images (true -> predicted)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
