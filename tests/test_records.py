"""Run files parse once into typed records: what is required, what is lenient, what is refused."""

from __future__ import annotations

import copy
import json

import pytest

from core.config import AugmentConfig
from core.runs.metrics_records import parse_evaluation, parse_metrics
from core.runs.parsing import RecordError
from core.runs.records import parse_config, parse_epoch, parse_status
from tests.test_runs import CONFIG

SPLIT = {
    "n": 10, "accuracy": 0.9, "accuracy_ci": [0.8, 1.0], "macro_f1": 0.88,
    "macro_f1_ci": [0.7, 1.0], "mcc": 0.85, "ece": 0.05, "nll": 0.3,
    "confusion_matrix": [[5, 1], [0, 4]],
    "per_class": {"a": {"precision": 1.0, "recall": 0.83, "specificity": 1.0, "f1": 0.9,
                        "support": 6, "roc_auc": None}},
    "roc_auc_macro": 0.97, "roc_curves": {"a": {"fpr": [0, 1], "tpr": [0, 1]}, "b": None},
    "reliability": [{"low": 0.9, "high": 1.0, "count": 10, "confidence": 0.95, "accuracy": 0.9}],
}  # fmt: skip
EVALUATION = {
    "version": 1, "dataset": "abc", "audit_threshold": 0.05, "split_matches_training": True,
    "classes": ["a", "b"], "splits": {"val": SPLIT, "test": SPLIT, "duplicate_free_test": None},
    "calibration": {"test": {"temperature": 1.2, "ece_before": 0.05, "ece_after": 0.03,
                             "nll_before": 0.3, "nll_after": 0.28}},
}  # fmt: skip


def test_a_complete_config_parses_into_typed_parts() -> None:
    config = parse_config({**CONFIG, "from_a_newer_workbench": {"x": 1}})
    assert config.classes == ("a", "b", "c", "d") and config.model.name == "resnet18"
    assert config.preprocessing.mean == (0.5, 0.5, 0.5)
    assert config.train is not None and config.train.augment == AugmentConfig()
    assert not config.weights_source.pretrained and config.recipe.name is None
    assert parse_config(config.to_json()) == config  # the record round-trips through JSON
    assert config.study is None
    cell = {"id": "20261201T120000Z_study_abcdef", "setting": "cnn_fast", "size": "50", "seed": 2}
    tagged = parse_config({**CONFIG, "study": cell})
    assert tagged.study is not None and tagged.study.size == "50" and tagged.study.seed == 2
    assert parse_config(tagged.to_json()) == tagged


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"classes": None}, "classes"),
        ({"data": {"root": "/x", "image_size": "big"}}, "data"),
        ({"model": {"name": "resnet18", "num_classes": 4, "colour": "red"}}, "model"),
        ({"train": {"optimizer": "sgd"}}, "train"),
        ({"weights_source": {"kind": 3}}, "weights_source"),
        ({"input_ranges": {"contrast": [1]}}, "input_ranges"),
    ],
)
def test_a_wrong_section_is_named(change: dict, named: str) -> None:
    with pytest.raises(RecordError, match=rf"unreadable sections \(.*{named}.*\)"):
        parse_config({**CONFIG, **change})


def test_the_parts_that_rebuild_the_model_are_required() -> None:
    partial = {key: value for key, value in CONFIG.items() if key not in ("data", "preprocessing")}
    with pytest.raises(RecordError, match=r"\(data, preprocessing\)"):
        parse_config(partial)


def test_metrics_read_odd_numbers_as_none_and_keep_a_whole_evaluation() -> None:
    metrics = parse_metrics(
        {"best_epoch": 3, "train_seconds": "slow", "val": {"accuracy": "high", "n": 8},
         "evaluation": EVALUATION}
    )  # fmt: skip
    assert metrics.best_epoch == 3 and metrics.train_seconds is None
    assert metrics.val is not None and metrics.val.accuracy is None and metrics.val.n == 8
    evaluation = metrics.evaluation
    assert evaluation is not None and evaluation.split("duplicate_free_test") is None
    test = evaluation.split("test")
    assert test is not None and test.accuracy_ci == (0.8, 1.0)
    assert test.confusion_matrix == ((5, 1), (0, 4)) and test.per_class["a"].support == 6
    assert evaluation.calibration["test"].temperature == 1.2


def test_a_misshapen_evaluation_reads_as_not_evaluated() -> None:
    broken = copy.deepcopy(EVALUATION)
    del broken["splits"]["test"]["per_class"]
    assert parse_metrics({"best_epoch": 2, "evaluation": broken}).evaluation is None
    assert parse_metrics({"best_epoch": 2, "evaluation": broken}).best_epoch == 2
    with pytest.raises(RecordError):
        parse_evaluation(broken)
    with pytest.raises(RecordError, match="unreadable sections"):
        parse_metrics({"val": [0.9]})


def test_history_lines_and_status() -> None:
    record = parse_epoch(json.loads('{"epoch": 2, "train_loss": "n/a", "val_accuracy": 0.5}'))
    assert record.epoch == 2 and record.train_loss is None and record.val_accuracy == 0.5
    with pytest.raises(RecordError):
        parse_epoch({"note": 1})
    status = parse_status({"status": "running", "pid": 12, "heartbeat": "2026-12-01T00:00:00"})
    assert status.status == "running" and status.to_json()["pid"] == 12
    with pytest.raises(RecordError):
        parse_status({"status": "running", "pid": "twelve"})
