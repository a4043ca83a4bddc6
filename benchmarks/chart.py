"""Time to draw a 1,000,000-point series in a MetricChart 120 columns wide.

Prints the median of several runs for: the min/max reduction alone, the EMA alone, the
plotext build of the reduced series alone, and the whole draw as the app does it (reduce
plus plotext build inside ``MetricChart.render``), without and with smoothing. Target for
the whole draw: under 50 ms (issue 3, DESIGN.md §9).

Usage: python benchmarks/chart.py [--points N] [--repeat R]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

import numpy as np
from textual.app import App, ComposeResult
from textual_plotext.plot import Plot

from tui.app.widgets.metric_chart import MetricChart, Trace, color_for
from tui.core.reduce import ema, minmax_reduce

WIDTH, HEIGHT = 120, 30
TARGET_MS = 50.0


def median_ms(action: Callable[[], object], repeat: int) -> float:
    action()  # warm caches and lazy imports
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def series(points: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = np.arange(points, dtype=np.float64)
    y = np.exp(-x / (points / 5)) + rng.normal(0, 0.02, points)
    y[points // 3] = np.nan
    return x, y


class ChartApp(App[None]):
    def compose(self) -> ComposeResult:
        yield MetricChart()


async def app_draw_ms(x: np.ndarray, y: np.ndarray, repeat: int, smoothing: float) -> float:
    app = ChartApp()
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        chart = app.query_one(MetricChart)
        chart.smoothing = smoothing
        await pilot.pause()
        assert chart.size.width == WIDTH
        trace = Trace("loss", x, y, color_for(0))

        def draw() -> None:
            # A new set of traces invalidates every cache, as new data from a run does.
            chart.set_traces([trace])
            chart.render()

        return median_ms(draw, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    x, y = series(args.points)

    reduce_ms = median_ms(lambda: minmax_reduce(x, y, WIDTH), args.repeat)
    ema_ms = median_ms(lambda: ema(y, 0.9), args.repeat)
    rx, ry = minmax_reduce(x, y, WIDTH)
    keep = np.isfinite(ry)
    line_x, line_y = rx[keep].tolist(), ry[keep].tolist()

    def build() -> None:
        plot = Plot()
        plot.plotsize(WIDTH, HEIGHT)
        plot.plot(line_x, line_y, marker="braille", label="loss")
        plot.build()

    build_ms = median_ms(build, args.repeat)
    draw_ms = asyncio.run(app_draw_ms(x, y, args.repeat, 0.0))
    smooth_ms = asyncio.run(app_draw_ms(x, y, args.repeat, 0.9))

    print(
        f"chart benchmark: {args.points:,} points, {WIDTH}x{HEIGHT} cells, median of {args.repeat}"
    )
    print(f"  reduce (min/max, {WIDTH} buckets -> {len(rx)} points): {reduce_ms:7.2f} ms")
    print(f"  EMA on the full series:                     {ema_ms:7.2f} ms")
    print(f"  plotext build of the reduced series:        {build_ms:7.2f} ms")
    print(
        f"  MetricChart draw (reduce + build):          {draw_ms:7.2f} ms  target < {TARGET_MS:.0f} ms"
    )
    print(
        f"  MetricChart draw with smoothing 0.9:        {smooth_ms:7.2f} ms  target < {TARGET_MS:.0f} ms"
    )


if __name__ == "__main__":
    main()
