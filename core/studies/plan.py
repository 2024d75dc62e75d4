"""A study's definition and state: model settings x training-set sizes x seeds, one JSON file.

The file (`checkpoints/studies/<study id>.json`) lists every cell with its state and run id and
is rewritten atomically after every change, so a reader (the Studies page, `study show`) always
sees a whole file and a killed study leaves a file that `resume` can continue from.

Each cell is an ordinary run, trained on a nested, stratified sample of the grouped training
part (`core.data.training_data.nested_sample`) on the study's one split: validation and both
test subsets are the same images for every cell. A smaller training set means fewer
optimizer steps per epoch, so a cell trains its setting's epochs but at least `min_steps` steps
(at most `MAX_EPOCH_FACTOR` times the epochs): with a recipe's 12 epochs, 50 images per class
would otherwise get 48 steps, which leaves a network trained from scratch at chance and would
make the comparison about the step count, not the data.
"""

from __future__ import annotations

import dataclasses
import math
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.atomic_files import read_json, write_json_atomic
from core.config import DataConfig
from core.data.training_data import split_training_part
from core.events import Events
from core.imaging.shifts import SHIFTS
from core.models.registry import get_spec
from core.paths import checkpoints_root
from core.runs.layout import iso, utcnow
from core.training.recipes import AUTO, OPTION_NAMES, RECIPE_CHOICES
from core.training.request import make_request

STUDY_VERSION = 1
STUDIES_FOLDER = "studies"
CELL_STATES = ("pending", "running", "completed", "failed", "cancelled")
MIN_STEPS = 300
MAX_EPOCH_FACTOR = 4
_ID_PATTERN = re.compile(r"^[0-9]{8}T[0-9]{6}Z_study_[0-9a-f]{6}$")
# Options a study setting may change: plain numbers and switches, written into the JSON file.
SETTING_OPTIONS = tuple(
    name for name in OPTION_NAMES if name not in ("augment", "seed", "split_seed")
    and not name.startswith(("train_", "subset_"))
)  # fmt: skip


class StudyError(ValueError):
    """A study that cannot be made, found or continued (one line, for the CLI and the page)."""


@dataclass(frozen=True)
class TrainingSize:
    """A training-set size: images per class, a fraction of each class, or all of it."""

    per_class: int | None = None
    fraction: float | None = None

    @property
    def is_all(self) -> bool:
        """The whole training part."""
        return self.per_class is None and self.fraction is None

    @property
    def label(self) -> str:
        """'50' (images per class), '25%' or 'all': how the CLI, the file and the page name it."""
        if self.per_class is not None:
            return str(self.per_class)
        if self.fraction is not None:
            return f"{self.fraction * 100:g}%"
        return "all"

    def images_per_class(self, counts: dict[str, int]) -> dict[str, int]:
        """How many training images of each class this size takes."""
        if self.per_class is not None:
            return {name: self.per_class for name in counts}
        if self.fraction is not None:
            return {name: max(1, round(self.fraction * count)) for name, count in counts.items()}
        return dict(counts)


def parse_size(text: str) -> TrainingSize:
    """'all', '50' (images per class) or '25%' (of each class); ValueError otherwise."""
    value = str(text).strip().lower()
    if value == "all":
        return TrainingSize()
    if value.endswith("%"):
        try:
            fraction = float(value[:-1]) / 100
        except ValueError:
            fraction = math.nan
        if not 0 < fraction <= 1:
            raise ValueError(f"training-set size {text!r}: a percentage must be in (0, 100]")
        return TrainingSize(fraction=fraction) if fraction < 1 else TrainingSize()
    if not value.isdigit() or int(value) < 1:
        raise ValueError(
            f"training-set size {text!r} is not 'all', a number of images per class or a percentage"
        )
    return TrainingSize(per_class=int(value))


@dataclass(frozen=True)
class ModelSetting:
    """One line of a study's charts: a model, the recipe it starts from and changes to it."""

    model: str
    recipe: str = AUTO
    changes: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    @property
    def name(self) -> str:
        """The label, or 'model' / 'model (robust)' / 'model (lr=0.001)'."""
        if self.label:
            return self.label
        extras = [] if self.recipe == AUTO else [self.recipe]
        extras += [f"{key}={value}" for key, value in sorted(self.changes.items())]
        return f"{self.model} ({', '.join(extras)})" if extras else self.model


def parse_setting(text: str, changes: dict[str, Any] | None = None) -> ModelSetting:
    """'MODEL' or 'MODEL:RECIPE' (auto, robust, none), with option changes for every cell."""
    model, _, recipe = str(text).partition(":")
    spec = get_spec(model.strip())  # ValueError for an unknown model
    recipe = recipe.strip() or AUTO
    if recipe not in RECIPE_CHOICES:
        raise ValueError(f"recipe {recipe!r} is not one of: {', '.join(RECIPE_CHOICES)}")
    unknown = sorted(set(changes or {}) - set(SETTING_OPTIONS))
    if unknown:
        raise ValueError(f"a study setting cannot change {', '.join(unknown)}")
    return ModelSetting(spec.name, recipe, dict(changes or {}))


@dataclass
class Cell:
    """One run of a study: a setting, a size, a seed, and how far it got."""

    setting: str
    size: str
    seed: int
    epochs: int
    train_images: int
    state: str = "pending"
    run_id: str | None = None
    error: str | None = None
    attempts: int = 0
    started_at: str | None = None
    finished_at: str | None = None

    @property
    def key(self) -> str:
        """'setting / size / seed': unique within a study."""
        return f"{self.setting} / {self.size} / seed {self.seed}"


@dataclass(frozen=True)
class ExternalSet:
    """A labelled folder every cell is also scored on (core.evaluation.external)."""

    name: str
    folder: str


@dataclass
class Study:
    """A study's definition and the state of its cells, as its JSON file holds them."""

    study_id: str
    data_root: str
    settings: list[ModelSetting]
    sizes: list[str]  # size labels, smallest first ('all' last)
    seeds: list[int]
    cells: list[Cell]
    name: str = ""
    split_seed: int = 0
    min_steps: int = MIN_STEPS
    stress: bool = True  # every cell's stress test at moderate severity
    externals: list[ExternalSet] = field(default_factory=list)
    class_counts: dict[str, int] = field(default_factory=dict)  # the whole training part
    # Images each cell's evaluation predicts: validation, the official test and, with the
    # stress test, the duplicate-free test under each shift (for the time estimate).
    evaluated_images: int = 0
    state: str = "ready"  # ready | running | cancelled | finished | incomplete
    message: str | None = None
    created_at: str = ""
    version: int = STUDY_VERSION

    @property
    def path(self) -> Path:
        """Where the study's file is."""
        return study_path(self.study_id)

    def setting(self, name: str) -> ModelSetting:
        """The setting called `name`."""
        return next(setting for setting in self.settings if setting.name == name)

    def counts(self) -> dict[str, int]:
        """Cells per state (every state listed)."""
        return {state: sum(cell.state == state for cell in self.cells) for state in CELL_STATES}

    def save(self) -> None:
        """Write the study's file atomically."""
        write_json_atomic(self.path, dataclasses.asdict(self))


def studies_root() -> Path:
    """Where study files are kept: a folder of the checkpoints that no run is named like."""
    return checkpoints_root() / STUDIES_FOLDER


def study_path(study_id: str) -> Path:
    """The file of study `study_id`; StudyError for a malformed id."""
    if not _ID_PATTERN.match(study_id):
        raise StudyError(f"{study_id!r} is not a study id (like 20261201T120000Z_study_1a2b3c)")
    return studies_root() / f"{study_id}.json"


def new_study_id() -> str:
    """'<UTC time>_study_<6 hex>'."""
    return f"{utcnow().strftime('%Y%m%dT%H%M%SZ')}_study_{secrets.token_hex(3)}"


def _from_json(payload: dict[str, Any]) -> Study:
    values = dict(payload)
    values["settings"] = [ModelSetting(**item) for item in values["settings"]]
    values["cells"] = [Cell(**item) for item in values["cells"]]
    values["externals"] = [ExternalSet(**item) for item in values.get("externals", [])]
    return Study(**values)


def load_study(study_id: str) -> Study:
    """The study's file as a Study; StudyError when it is missing or unreadable."""
    path = study_path(study_id)
    payload = read_json(path)
    if payload is None:
        raise StudyError(f"study {study_id} not found" + (" (damaged)" if path.exists() else ""))
    try:
        return _from_json(payload)
    except (TypeError, KeyError) as error:
        raise StudyError(f"study {study_id}: its file is not a study ({error})") from None


def list_studies() -> list[Study]:
    """Every readable study, newest first (a damaged file is skipped)."""
    found = []
    for path in sorted(studies_root().glob("*_study_*.json"), reverse=True):
        try:
            found.append(load_study(path.stem))
        except StudyError:
            continue
    return found


def cell_epochs(base_epochs: int, train_images: int, batch_size: int, min_steps: int) -> int:
    """The setting's epochs, raised so the cell takes at least `min_steps` optimizer steps (at
    most MAX_EPOCH_FACTOR times the epochs)."""
    steps_per_epoch = max(1, math.ceil(train_images / batch_size))
    wanted = max(base_epochs, math.ceil(min_steps / steps_per_epoch))
    return min(wanted, base_epochs * MAX_EPOCH_FACTOR)


def plan_study(
    *,
    data_root: Path | str,
    settings: list[ModelSetting],
    sizes: list[str],
    seeds: int | list[int],
    name: str = "",
    split_seed: int = 0,
    min_steps: int = MIN_STEPS,
    stress: bool = True,
    externals: list[ExternalSet] | None = None,
    events: Events | None = None,
) -> Study:
    """A new study (not saved yet), every cell planned; ValueError (one line) for bad input:
    no setting, size or seed, a size larger than a class, a bad option, a missing folder."""
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not settings or not sizes or not seed_list:
        raise ValueError("a study needs at least one model setting, one size and one seed")
    if len({setting.name for setting in settings}) != len(settings):
        raise ValueError("two model settings of the study have the same name")
    for external in externals or []:
        if not Path(external.folder).is_dir():
            raise ValueError(f"external set {external.name}: {external.folder} is not a folder")
    root = Path(data_root).expanduser().resolve()
    part = split_training_part(DataConfig(root=str(root), split_seed=split_seed), events)
    counts = part.class_counts("train")
    evaluated = len(part.manifest.positions("val")) + len(part.manifest.positions("test"))
    if stress and part.audit_report is not None:
        leakage = part.audit_report.test_leakage
        evaluated += len(SHIFTS) * int((leakage["leakage"] == "none").sum())
    parsed = {parse_size(text).label: parse_size(text) for text in sizes}
    for size in parsed.values():
        for class_name, wanted in size.images_per_class(counts).items():
            if wanted > counts[class_name]:
                raise ValueError(
                    f"training-set size {size.label} is larger than class {class_name} "
                    f"({counts[class_name]} training images)"
                )
    images = {label: sum(size.images_per_class(counts).values()) for label, size in parsed.items()}
    ordered = sorted(parsed, key=lambda label: (images[label], label))
    trains = {
        setting.name: make_request(
            data_root=root, model=setting.model, recipe=setting.recipe, **setting.changes
        ).train
        for setting in settings
    }  # each setting's checked options: epochs and batch size
    cells = []
    for seed in seed_list:  # seed by seed: each finished seed is a whole curve
        for label in ordered:
            for setting in settings:
                train = trains[setting.name]
                epochs = cell_epochs(train.epochs, images[label], train.batch_size, min_steps)
                cells.append(Cell(setting.name, label, seed, epochs, images[label]))
    return Study(
        study_id=new_study_id(),
        data_root=str(root),
        settings=list(settings),
        sizes=ordered,
        seeds=seed_list,
        cells=cells,
        name=name,
        split_seed=split_seed,
        min_steps=min_steps,
        stress=stress,
        externals=list(externals or []),
        class_counts=counts,
        evaluated_images=evaluated,
        created_at=iso(utcnow()),
    )
