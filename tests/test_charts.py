"""The report's hand-drawn plots: SVG that says what it shows, PNGs that decode."""

from __future__ import annotations

import base64
import io

import matplotlib.image
import numpy as np

from grader.report import charts


def test_png_decodes_to_the_same_pixels():
    image = np.random.default_rng(0).integers(0, 256, (28, 28))
    uri = charts.png(image.tolist())
    assert uri.startswith("data:image/png;base64,")
    decoded = matplotlib.image.imread(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])), "png")
    assert decoded.shape == (28, 28)
    assert np.array_equal(np.rint(decoded * 255).astype(int), image)


def test_histogram_counts_every_value_once():
    svg = charts.histogram([0, 1, 1, 2, 14, 14, 14], 0, 14, "scores", bins=7)
    assert svg.startswith("<svg") and "<title>scores</title>" in svg
    titles = [t for t in svg.split("<title>")[2:]]
    counts = [int(t.split(": ")[1].split("<")[0]) for t in titles]
    assert sum(counts) == 7 and counts[-1] == 3


def test_fit_draws_points_and_curve_and_survives_nan():
    x = np.linspace(-1, 1, 50)
    svg = charts.fit(x, x**2, x**2, "fit")
    assert svg.count("<circle") == 50 and "<polyline" in svg
    bad = charts.fit([0.0, 1.0], [1.0, 2.0], [float("nan"), float("nan")], "fit")
    assert "no finite predictions" in bad


def test_heat_levels_show_small_counts_beside_a_large_diagonal():
    levels = charts.heat_levels([[1000, 0], [3, 980]])
    assert levels[0][0] == 9 and levels[0][1] == 0 and 0 < levels[1][0] < 9
