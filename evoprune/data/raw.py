"""Data sets as published: uint8 images and labels, before they become normalised tensors."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_ROOT = Path(os.environ.get("EVOPRUNE_DATA", Path.home() / ".cache" / "evoprune" / "data"))


@dataclass(frozen=True)
class RawImages:
    """uint8 images and labels as published, plus the normalisation that is standard for them."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    mean: float | tuple[float, ...]  # of the pixel values scaled to [0, 1]: one, or one per channel
    std: float | tuple[float, ...]
    num_classes: int = 10
    augment: str = "none"  # the standard training augmentation for these images
