"""Checks of plain values that every layer may need (settings and problems alike): each names the
value and says what is allowed."""
from __future__ import annotations

import math
from typing import Any

from .errors import EvopruneError


def number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EvopruneError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise EvopruneError(f"{name} must be a finite number, got {value!r}")
    return value


def accuracy_drop(name, value):
    if not 0 <= number(name, value) <= 1:
        raise EvopruneError(f"{name} {value:g} must be a non-negative accuracy fraction, at most 1 "
                            "(0.01 = one percentage point)")
    return value
