"""Chart choices a reader depends on: the accuracy axis shows differences, and runs differ by
more than their colour."""

from __future__ import annotations

from core.runs.metrics_records import SplitReport
from core.ui.compare_charts import accuracy_axis_range, split_accuracy_chart
from core.ui.palette import RUN_COLOURS, RUN_SYMBOLS, colour, symbol, translucent


def test_the_accuracy_axis_spans_the_intervals_not_zero_to_one() -> None:
    reports = {
        "custom": {"test": SplitReport(n=100, accuracy=0.97, accuracy_ci=(0.96, 0.98))},
        "transfer": {"test": SplitReport(n=100, accuracy=0.99, accuracy_ci=(0.985, 0.995))},
    }
    figure = split_accuracy_chart(reports, ["test"])
    low, high = figure.layout.yaxis.range
    assert 0.9 < low < 0.96 and 0.995 < high <= 1.01  # 97% and 99% are far apart on it
    assert figure.layout.yaxis.tickformat == ".1%"
    assert [trace.type for trace in figure.data] == ["scatter", "scatter"]
    assert figure.data[0].marker.symbol != figure.data[1].marker.symbol
    assert accuracy_axis_range([]) == (0.0, 1.05)  # nothing evaluated: the whole scale
    assert accuracy_axis_range([0.5, 0.5]) == (0.49, 0.51)  # never flatter than 2 points
    assert accuracy_axis_range([0.0, 1.0])[0] == 0.0


def test_runs_get_distinct_colour_blind_safe_colours_and_shapes() -> None:
    assert len(set(RUN_COLOURS)) == len(RUN_COLOURS) == 8
    assert len(set(RUN_SYMBOLS)) == len(RUN_SYMBOLS)
    assert colour(0) == "#0072B2" and colour(8) == colour(0)  # Okabe-Ito blue, cycling
    assert symbol(1) != symbol(0)
    assert translucent("#0072B2", 0.5) == "rgba(0,114,178,0.5)"
