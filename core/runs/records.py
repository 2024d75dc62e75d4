"""Typed, frozen records of a run folder's files, parsed once when the folder is read.

In the spirit of torchvision's `Weights` metadata: readers get attributes with types instead
of dicts to walk and re-validate. A file whose required parts are missing or of the wrong
type gives no record and one line of problem (the run is then listed as damaged); a number
that is not one (a hand edit, another tool) reads as None.

`RunConfig` is config.json, `RunStatus` status.json and `EpochRecord` one line of
history.jsonl; metrics.json is in `core.runs.metrics_records`. docs/architecture.md lists
every field.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from core.config import DataConfig, ModelConfig, Preprocessing, TrainConfig
from core.runs.parsing import (
    RecordError,
    convert,
    matches,
    number_or_none,
    parse_config_section,
    parse_lenient,
    parse_record,
    record_fields,
)


@dataclass(frozen=True)
class DatasetRecord:
    """Which images the run trained and validated on."""

    root: str | None = None
    synthetic: bool = False
    fingerprint: str | None = None
    split_manifest: str | None = None
    split_manifest_digest: str | None = None
    grouped_split: bool | None = None
    train_images: int | None = None
    val_images: int | None = None


@dataclass(frozen=True)
class WeightsRecord:
    """Where the starting weights came from (kind 'random-init' for none)."""

    kind: str = "random-init"
    path: str | None = None
    sha256: str | None = None
    description: str | None = None

    @property
    def pretrained(self) -> bool:
        """Whether the run started from real ImageNet weights (recorded, not requested)."""
        return self.kind != "random-init"


@dataclass(frozen=True)
class ParameterCount:
    """Parameters of the model, all and those that trained."""

    total: int | None = None
    trainable: int | None = None


@dataclass(frozen=True)
class DeviceRecord:
    """Where and how the run trained."""

    kind: str | None = None
    name: str | None = None
    precision: str | None = None
    channels_last: bool | None = None


@dataclass(frozen=True)
class RecipeRecord:
    """The recipe the run's options started from (None: the plain defaults), and changes."""

    name: str | None = None
    changed: tuple[str, ...] = ()


@dataclass(frozen=True)
class StudyRecord:
    """The study cell a run is (core.studies): study id, model setting, training-set size
    ('50' images per class, '25%', 'all') and seed."""

    id: str
    setting: str
    size: str
    seed: int


@dataclass(frozen=True)
class DistributedRecord:
    """How many processes trained the run together (DDP under torchrun), and how.

    `batch` "global": train.batch_size is the batch of all processes together (each took
    per_process_batch of it) and train.lr is the global batch's learning rate.
    """

    world_size: int
    backend: str
    batch: str = "global"
    processes_per_machine: int | None = None
    per_process_batch: float | None = None


@dataclass(frozen=True)
class RunConfig:
    """config.json: everything needed to rebuild the model and its input, and its history."""

    classes: tuple[str, ...]
    data: DataConfig
    model: ModelConfig
    preprocessing: Preprocessing
    train: TrainConfig | None = None
    model_family: str | None = None
    dataset: DatasetRecord = field(default_factory=DatasetRecord)
    weights_source: WeightsRecord = field(default_factory=WeightsRecord)
    parameters: ParameterCount = field(default_factory=ParameterCount)
    input_ranges: dict[str, tuple[float, float]] | None = None
    device: DeviceRecord = field(default_factory=DeviceRecord)
    versions: dict[str, str] = field(default_factory=dict)
    recipe: RecipeRecord = field(default_factory=RecipeRecord)
    study: StudyRecord | None = None
    distributed: DistributedRecord | None = None  # None: one process trained it
    config_version: int | None = None
    created_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as config.json holds it (a new run can be created from it)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))  # tuples become JSON lists


# Written by training from its own config dataclasses: read back strictly (unknown fields are an
# error). The other record sections ignore fields a newer workbench may add.
_CONFIG_CLASSES = (DataConfig, ModelConfig, Preprocessing, TrainConfig)
_REQUIRED_CONFIG = ("classes", "data", "model", "preprocessing")


def _strings(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise RecordError("expected a list of names")
    return tuple(values)


def _ranges(values: Any) -> dict[str, tuple[float, float]] | None:
    if values is None:
        return None
    if not isinstance(values, dict):
        raise RecordError("expected an object")
    ranges = {}
    for name, pair in values.items():
        bounds = [number_or_none(v) for v in pair] if isinstance(pair, list) else []
        if len(bounds) != 2 or None in bounds:
            raise RecordError(f"{name} is not a [low, high] range")
        ranges[str(name)] = (float(bounds[0]), float(bounds[1]))  # type: ignore[arg-type]
    return ranges


def _dataclass_in(hint: Any) -> type | None:
    """The dataclass a field's hint names (`TrainConfig | None` -> TrainConfig), if any."""
    options = (
        typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, types.UnionType)
        else (hint,)
    )
    return next((option for option in options if dataclasses.is_dataclass(option)), None)


def _section(name: str, hint: Any, value: Any) -> Any:
    """One section of config.json, checked against RunConfig's hint for it."""
    if name == "classes":
        return _strings(value)
    if name == "input_ranges":
        return _ranges(value)
    kind = _dataclass_in(hint)
    if value is None and kind is not None and matches(None, hint):
        return None  # an optional section written empty (a run that is no study cell)
    if kind in _CONFIG_CLASSES:
        return parse_config_section(kind, value)
    if kind is not None:
        return parse_record(kind, value)
    if not matches(value, hint):
        raise RecordError(f"{name} is {value!r}")
    return convert(value, hint)


def parse_config(payload: Any) -> RunConfig:
    """config.json as a RunConfig; RecordError lists the unreadable sections, in one line."""
    if not isinstance(payload, dict):
        raise RecordError("is not a JSON object")
    parsed: dict[str, Any] = {}
    unreadable: list[str] = []
    for name, hint in record_fields(RunConfig):
        if name not in payload:
            if name in _REQUIRED_CONFIG:
                unreadable.append(name)
            continue
        try:
            parsed[name] = _section(name, hint, payload[name])
        except RecordError:
            unreadable.append(name)
    if unreadable:
        raise RecordError(f"has unreadable sections ({', '.join(sorted(unreadable))})")
    return RunConfig(**parsed)


@dataclass(frozen=True)
class RunStatus:
    """status.json as stored (the effective status, which may be 'interrupted', is RunInfo's)."""

    status: str
    message: str | None = None
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    progress: dict[str, Any] | None = None
    pid: int | None = None
    host: str | None = None
    heartbeat: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as status.json holds it."""
        return dataclasses.asdict(self)


def parse_status(payload: Any) -> RunStatus:
    """status.json as a RunStatus; RecordError when it has no status or odd types."""
    if not isinstance(payload, dict):
        raise RecordError("is not a JSON object")
    return parse_record(RunStatus, payload)


@dataclass(frozen=True)
class EpochRecord:
    """One line of history.jsonl (a value that is not a number reads as None)."""

    epoch: int
    train_loss: float | None = None
    train_accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    learning_rate: float | None = None
    epoch_seconds: float | None = None
    images_per_second: float | None = None
    elapsed_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as a history line holds it."""
        return dataclasses.asdict(self)


def parse_epoch(payload: Any) -> EpochRecord:
    """One history line as an EpochRecord; RecordError when it has no whole epoch number."""
    if not isinstance(payload, dict) or not matches(payload.get("epoch"), int):
        raise RecordError("has no epoch number")
    return parse_lenient(EpochRecord, payload)
