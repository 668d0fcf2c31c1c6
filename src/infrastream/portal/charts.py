"""Bar charts as server-rendered SVG for the insights page: readable without JavaScript,
no chart library. This lays the bars out (widths, offsets, labels); the template draws them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

WIDTH = 600
"""Width of the plotting area, in SVG units (the SVG scales to its container)."""


@dataclass(frozen=True)
class Segment:
    key: str
    x: float
    width: float
    value: float
    label: str


@dataclass(frozen=True)
class Bar:
    label: str
    y: int
    segments: tuple[Segment, ...]
    total: str


def stacked(rows: Sequence[tuple[str, Mapping[str, float]]], keys: Sequence[str],
            label: Callable[[float], str], *, height: int = 28) -> list[Bar]:
    """One horizontal bar per row, its segments in `keys` order, scaled to the largest
    total; `label(value)` says a value in words."""
    largest = max((sum(values.get(k, 0.0) for k in keys) for _, values in rows), default=0.0)
    scale = WIDTH / largest if largest > 0 else 0.0
    bars = []
    for index, (name, values) in enumerate(rows):
        x = 0.0
        segments = []
        for key in keys:
            value = float(values.get(key, 0.0))
            width = value * scale
            if width > 0:
                segments.append(Segment(key, round(x, 2), round(width, 2), value,
                                        f"{key}: {label(value)}"))
            x += width
        bars.append(Bar(name, index * height, tuple(segments),
                        label(sum(values.get(k, 0.0) for k in keys))))
    return bars
