"""Small plots for the reports, drawn as inline SVG (and digits as tiny PNGs) in plain Python.

A page must open offline from `file://` and fifty of them must render in seconds, so the plots
are a few hundred bytes of markup each rather than matplotlib figures.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Sequence
from html import escape

import numpy as np

WIDTH, HEIGHT, PAD = 420, 200, 32


def _frame(body: str, label: str, width: int = WIDTH, height: int = HEIGHT) -> str:
    return (f'<svg class="chart" role="img" aria-label="{escape(label)}" viewBox="0 0 {width} '
            f'{height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
            f"<title>{escape(label)}</title>{body}</svg>")


def histogram(values: Sequence[float], low: float, high: float, label: str,
              bins: int = 10, unit: str = "") -> str:
    """Counts of `values` in `bins` equal bins over [low, high], with the bin edges below."""
    if high <= low:
        high = low + 1.0
    counts, edges = np.histogram(np.clip(values, low, high), bins=bins, range=(low, high))
    top = max(int(counts.max()) if len(counts) else 0, 1)
    step = (WIDTH - 2 * PAD) / bins
    parts = []
    for k, count in enumerate(counts):
        h = (HEIGHT - 2 * PAD) * count / top
        x, y = PAD + k * step, HEIGHT - PAD - h
        parts.append(f'<rect class="bar" x="{x + 1:.1f}" y="{y:.1f}" width="{step - 2:.1f}" '
                     f'height="{h:.1f}"><title>{edges[k]:.3g}–{edges[k + 1]:.3g}{unit}: '
                     f"{count}</title></rect>")
        if count:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{y - 3:.1f}" '
                         f'text-anchor="middle">{count}</text>')
    for k in (0, bins // 2, bins):
        parts.append(f'<text x="{PAD + k * step:.1f}" y="{HEIGHT - PAD + 14}" '
                     f'text-anchor="middle">{edges[k]:.3g}{unit}</text>')
    parts.append(f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" '
                 f'y2="{HEIGHT - PAD}"/>')
    return _frame("".join(parts), label)


def fit(x: Sequence[float], y: Sequence[float], prediction: Sequence[float], label: str,
        empty: str = "no finite predictions to draw") -> str:
    """Data points and the model's curve through them (x sorted); EMPTY says there are none."""
    xs, ys, ps = (np.asarray(v, dtype=np.float64) for v in (x, y, prediction))
    finite = np.isfinite(xs) & np.isfinite(ys) & np.isfinite(ps)
    xs, ys, ps = xs[finite], ys[finite], ps[finite]
    if not len(xs):
        return _frame(f'<text x="40" y="100">{escape(empty)}</text>', label)
    x0, x1 = float(xs.min()), float(xs.max()) or 1.0
    both = np.concatenate([ys, ps])
    y0, y1 = float(both.min()), float(both.max())
    y1 = y1 if y1 > y0 else y0 + 1.0
    x1 = x1 if x1 > x0 else x0 + 1.0

    def sx(v: float) -> float:
        return PAD + (WIDTH - 2 * PAD) * (v - x0) / (x1 - x0)

    def sy(v: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * (v - y0) / (y1 - y0)

    dots = "".join(f'<circle class="dot" cx="{sx(a):.1f}" cy="{sy(b):.1f}" r="1.6"/>'
                   for a, b in zip(xs, ys, strict=True))
    line = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(xs, ps, strict=True))
    axes = (f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" '
            f'y2="{HEIGHT - PAD}"/><text x="{PAD}" y="{HEIGHT - PAD + 14}">{x0:.2g}</text>'
            f'<text x="{WIDTH - PAD}" y="{HEIGHT - PAD + 14}" text-anchor="end">{x1:.2g}</text>'
            f'<text x="4" y="{PAD}">{y1:.2g}</text><text x="4" y="{HEIGHT - PAD}">{y0:.2g}</text>')
    return _frame(f'{axes}{dots}<polyline class="curve" points="{line}"/>', label)


def png(image: Sequence[Sequence[int]]) -> str:
    """A greyscale image (rows of 0..255) as a `data:image/png` URI."""
    pixels = np.clip(np.asarray(image, dtype=np.int64), 0, 255).astype(np.uint8)
    if pixels.ndim != 2:
        pixels = np.zeros((1, 1), np.uint8)
    height, width = pixels.shape
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(data).decode()


def heat_levels(matrix: Sequence[Sequence[float]], levels: int = 9) -> list[list[int]]:
    """Each cell's shade 0..levels for a table heat map, on a log scale so that a confusion
    matrix's few mistakes still show beside its large diagonal."""
    values = np.log1p(np.maximum(np.asarray(matrix, dtype=np.float64), 0))
    top = values.max() if values.size and values.max() > 0 else 1.0
    return np.rint(values / top * levels).astype(int).tolist()
