"""Chart choices a reader depends on: the accuracy axes show differences with labels that say
their values, points name their runs, thin calibration bins are marked, and runs differ by more
than their colour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.evaluation import metrics
from core.evaluation.calibration import calibration_summary
from core.evaluation.comparison import calibration_table
from core.figures.compare import (
    accuracy_axis_range,
    accuracy_time_chart,
    percent_ticks,
    split_accuracy_chart,
)
from core.figures.evaluation import MIN_BIN_IMAGES, reliability_chart
from core.figures.palette import RUN_COLOURS, RUN_SYMBOLS, colour, symbol, translucent
from core.runs.metrics_records import Calibration, EvaluationRecord, SplitReport, parse_evaluation


def tick_labels(values: list[float], tick_format: str) -> list[str]:
    """The labels plotly draws: d3's '.N%' formats like Python's."""
    return [format(value, tick_format) for value in values]


def test_the_accuracy_axis_spans_the_intervals_not_zero_to_one() -> None:
    reports = {
        "custom": {"test": SplitReport(n=100, accuracy=0.97, accuracy_ci=(0.96, 0.98))},
        "transfer": {"test": SplitReport(n=100, accuracy=0.99, accuracy_ci=(0.985, 0.995))},
    }
    figure = split_accuracy_chart(reports, ["test"])
    low, high = figure.layout.yaxis.range
    assert 0.9 < low < 0.96 and 0.995 < high <= 1.01  # 97% and 99% are far apart on it
    labels = tick_labels(list(figure.layout.yaxis.tickvals), figure.layout.yaxis.tickformat)
    assert len(labels) >= 4 and len(set(labels)) == len(labels)
    assert [trace.type for trace in figure.data] == ["scatter", "scatter"]
    assert figure.data[0].marker.symbol != figure.data[1].marker.symbol
    assert accuracy_axis_range([]) == (0.0, 1.05)  # nothing evaluated: the whole scale
    assert accuracy_axis_range([0.5, 0.5]) == (0.49, 0.51)  # never flatter than 2 points
    assert accuracy_axis_range([0.0, 1.0])[0] == 0.0


@pytest.mark.parametrize(
    ("low", "high"),
    [(0.955, 1.005), (0.965, 1.0), (0.98, 1.0), (0.49, 0.51), (0.0, 1.05), (0.9, 0.96),
     (0.9712, 0.9788), (0.5, 0.9)],
)  # fmt: skip
def test_percent_ticks_are_distinct_and_say_their_own_value(low: float, high: float) -> None:
    values, tick_format = percent_ticks(low, high)
    labels = tick_labels(values, tick_format)
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels  # no "97%, 97%"
    for value, label in zip(values, labels, strict=True):
        # The gridline labelled "100%" is at 100%, not at 99.5% rounded up.
        assert float(label.rstrip("%")) / 100 == pytest.approx(value, abs=1e-12)
        assert low - 1e-9 <= value <= min(high, 1.0) + 1e-9


def time_table() -> pd.DataFrame:
    """Three evaluated runs close together near the top of the scale (as real runs are)."""
    rows = []
    for run, name, seconds, accuracy in (
        ("run-a", "cnn_fast fast", 88.0, 0.979), ("run-b", "mobilenet fast", 338.0, 0.992),
        ("run-c", "cnn_fast robust", 211.0, 0.972),
    ):  # fmt: skip
        row = {"run": run, "name": name, "model": name.split()[0], "train_seconds": seconds}
        for split, drop in (("test", 0.0), ("duplicate_free_test", 0.006),
                            ("unseen_scan_test", 0.03)):  # fmt: skip
            value = accuracy - drop
            row |= {f"{split}_accuracy": value, f"{split}_low": value - 0.008,
                    f"{split}_high": min(1.0, value + 0.006)}  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def test_accuracy_against_time_has_distinct_exact_ticks() -> None:
    figure = accuracy_time_chart(time_table(), highlighted=["run-a"])
    axis = figure.layout.yaxis
    labels = tick_labels(list(axis.tickvals), axis.tickformat)
    assert len(set(labels)) == len(labels) >= 4, labels
    assert max(axis.tickvals) <= 1.0 and "100%" not in labels[:-1]
    low, high = axis.range
    assert low <= 0.972 - 0.03 - 0.008 and high >= 0.998  # every interval is on the axis


def test_accuracy_against_time_names_every_point() -> None:
    figure = accuracy_time_chart(time_table(), highlighted=["run-a", "run-b"])
    official = next(trace for trace in figure.data if trace.name == "official test")
    assert list(official.text) == ["cnn_fast fast", "mobilenet fast", ""]  # selected runs only
    assert "markers+text" in official.mode
    assert official.textposition[0] != official.textposition[1]  # both names inside the plot
    for trace in figure.data:  # hover names every run on every subset
        assert [text.split(" · ")[0] for text in trace.hovertext] == [
            "cnn_fast fast", "mobilenet fast", "cnn_fast robust",
        ]  # fmt: skip
        assert "%{hovertext}" in trace.hovertemplate
    assert list(official.marker.size) == [14, 14, 9]


def test_reliability_bins_show_their_counts_and_thin_bins_stand_apart() -> None:
    bins = (
        {"confidence": 0.52, "accuracy": 0.0, "count": 1},
        {"confidence": 0.63, "accuracy": 0.33, "count": 9},
        {"confidence": 0.83, "accuracy": 0.67, "count": 12},
        {"confidence": 0.91, "accuracy": 0.68, "count": 19},
        {"confidence": 0.997, "accuracy": 0.995, "count": 1251},
    )
    figure = reliability_chart({"cnn": SplitReport(n=1292, reliability=bins)})
    joined, thin = figure.data[1], figure.data[2]
    assert joined.mode == "lines+markers" and list(joined.customdata) == [12, 19, 1251]
    assert thin.mode == "markers" and list(thin.customdata) == [1, 9]
    assert all(count < MIN_BIN_IMAGES for count in thin.customdata)
    assert thin.marker.symbol.endswith("-open") and not joined.marker.symbol.endswith("-open")
    assert all("%{customdata} images" in trace.hovertemplate for trace in (joined, thin))
    sizes = list(joined.marker.size)
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]  # bigger bins, bigger markers


def test_calibration_table_has_each_number_once() -> None:
    generator = np.random.default_rng(0)
    labels = generator.integers(0, 4, 200)
    logits = generator.normal(size=(200, 4)) * 3 + np.eye(4)[labels] * 2
    val_labels, val_logits = labels[:100], logits[:100]
    report = metrics.classification_report(
        labels[100:], metrics.softmax(logits[100:]), ["a", "b", "c", "d"], bootstrap_samples=20
    )
    scaled = calibration_summary(val_logits, val_labels, logits[100:], labels[100:])
    # The duplicate the table dropped: the evaluation's own ECE and NLL are "before scaling".
    assert report["ece"] == pytest.approx(scaled["ece_before"], abs=1e-12)
    assert report["nll"] == pytest.approx(scaled["nll_before"], abs=1e-12)
    evaluation = parse_evaluation(
        {"splits": {"test": {k: v for k, v in report.items() if k not in ("predicted", "correct")}},
         "calibration": {"test": scaled}}
    )  # fmt: skip
    table = calibration_table({"run": evaluation}, "test")
    assert list(table.columns) == [
        "run", "temperature", "ECE before scaling", "ECE after scaling",
        "NLL before scaling", "NLL after scaling",
    ]  # fmt: skip
    assert table.loc[0, "ECE before scaling"] == pytest.approx(report["ece"])
    # Validation has no "after" (the temperature is fitted on it) but keeps its own ECE.
    validation = EvaluationRecord(splits={"val": SplitReport(n=10, ece=0.1, nll=0.3)},
                                  calibration={"test": Calibration()})  # fmt: skip
    row = calibration_table({"run": validation}, "val").iloc[0]
    assert row["ECE before scaling"] == 0.1 and pd.isna(row["ECE after scaling"])


def test_runs_get_distinct_colour_blind_safe_colours_and_shapes() -> None:
    assert len(set(RUN_COLOURS)) == len(RUN_COLOURS) == 8
    assert len(set(RUN_SYMBOLS)) == len(RUN_SYMBOLS)
    assert colour(0) == "#0072B2" and colour(8) == colour(0)  # Okabe-Ito blue, cycling
    assert symbol(1) != symbol(0)
    assert translucent("#0072B2", 0.5) == "rgba(0,114,178,0.5)"
