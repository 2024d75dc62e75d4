"""One source of training defaults: the Train page and `python -m core train` start from the
same recipe, and config.json records which."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.cli.main import build_parser
from core.cli.training import request_from_arguments
from core.evaluation.evaluate import evaluate_run
from core.evaluation.run_selection import report_of
from core.evaluation.stress import moderate_shift_accuracies, stress_run
from core.jobs import JobManager
from core.runs.registry import load_run
from core.training.fit import fit
from core.training.recipe_records import load_recipe_records, measure_recipe, save_recipe_records
from core.training.recipes import (
    FAST_CPU_RECIPES,
    RECIPE_DESCRIPTIONS,
    ROBUST_RECIPES,
    TrainingOptions,
    recipe_options,
)
from core.training.request import TrainingRequest, make_request
from tests.test_cli import run_cli
from tests.test_training import tiny_request


def cli_request(*arguments: str) -> TrainingRequest:
    return request_from_arguments(build_parser().parse_args(["train", *arguments]))


def page_request(
    app: AppTest, model: str, monkeypatch: pytest.MonkeyPatch, recipe: str | None = None
) -> TrainingRequest:
    """The request the Train page submits for `model` (and `recipe`, when chosen) when no other
    widget is touched."""
    submitted: list[TrainingRequest] = []

    def capture(self: JobManager, request: TrainingRequest) -> None:
        submitted.append(request)
        raise RuntimeError("captured")  # stop before a job starts

    monkeypatch.setattr(JobManager, "submit", capture)
    app.run()
    app.switch_page("app_pages/train.py").run()
    app.selectbox(key="train_model").select(model).run()
    if recipe is not None:
        app.radio(key=f"train_recipe_{model}").set_value(recipe).run()
    start = next(button for button in app.button if button.label == "Start training")
    start.click().run()
    assert len(submitted) == 1
    return submitted[0]


@pytest.mark.parametrize("model", sorted(FAST_CPU_RECIPES))
def test_the_page_and_the_cli_default_to_the_same_request(
    model: str, app: AppTest, demo_dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_page = page_request(app, model, monkeypatch)
    from_cli = cli_request("--model", model, "--data", str(demo_dataset_dir))
    assert from_page == from_cli
    assert from_cli.recipe == model and from_cli.recipe_changes == ()
    recipe = FAST_CPU_RECIPES[model]
    assert from_cli.train.epochs == recipe["epochs"]
    assert from_cli.train.augment == recipe["augment"]
    assert from_cli.data.image_size == recipe["image_size"]


def test_recipe_none_gives_the_plain_defaults(demo_dataset_dir: Path) -> None:
    plain = cli_request("--model", "cnn_fast", "--recipe", "none", "--data", str(demo_dataset_dir))
    defaults = TrainingOptions()
    assert plain.recipe is None
    assert plain.train.epochs == defaults.epochs and plain.train.schedule == defaults.schedule
    assert plain.train.augment == defaults.augment  # every part on
    assert plain == make_request(data_root=demo_dataset_dir, model="cnn_fast")


def test_a_changed_option_is_recorded_against_the_recipe(demo_dataset_dir: Path) -> None:
    request = cli_request("--model", "cnn_fast", "--epochs", "3", "--data", str(demo_dataset_dir))
    assert request.recipe == "cnn_fast" and request.recipe_changes == ("epochs",)
    expected = replace(recipe_options("cnn_fast"), epochs=3)
    assert request.train.lr == expected.lr and request.train.epochs == 3


def test_a_model_without_a_recipe_starts_from_the_plain_defaults() -> None:
    assert "cnn_classic" not in FAST_CPU_RECIPES
    assert recipe_options("cnn_classic") == TrainingOptions()
    with pytest.raises(ValueError, match="recipe 'fast' is not one of"):
        recipe_options("cnn_fast", "fast")


def test_train_with_no_option_trains_the_recipe_and_says_so(demo_dataset_dir: Path) -> None:
    # The recipe's epochs, with only the data made tiny so the run takes seconds.
    result = run_cli(
        "train", "--data", str(demo_dataset_dir), "--model", "cnn_fast", "--image-size", "32",
        "--subset", "8", "--no-evaluate", "--json", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run_dir = Path(json.loads(result.stdout)["run_dir"])
    config = json.loads((run_dir / "config.json").read_text())
    recipe = FAST_CPU_RECIPES["cnn_fast"]
    assert config["recipe"] == {"name": "cnn_fast", "changed": ["image_size", "subset_per_class"]}
    assert config["train"]["epochs"] == recipe["epochs"]
    assert config["train"]["schedule"] == "onecycle" and config["train"]["lr"] == recipe["lr"]
    assert config["train"]["augment"]["rotate_degrees"] == 0.0  # flips only


@pytest.mark.parametrize("model", sorted(ROBUST_RECIPES))
def test_the_robust_recipe_is_the_same_on_the_page_and_in_the_cli(
    model: str, app: AppTest, demo_dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_page = page_request(app, model, monkeypatch, recipe="robust")
    from_cli = cli_request("--model", model, "--recipe", "robust", "--data", str(demo_dataset_dir))
    assert from_page == from_cli
    assert from_cli.recipe == f"{model}_robust" and from_cli.recipe_changes == ()
    robust = ROBUST_RECIPES[model]
    assert from_cli.train.epochs == robust["epochs"] and from_cli.train.augment == robust["augment"]
    assert "scanner" in from_cli.train.augment.parts and from_cli.train.augment.share < 1
    assert any(f"{model}_robust" == name for name in RECIPE_DESCRIPTIONS)
    # Unticking one part keeps the recipe's strengths for the others.
    partial = cli_request(
        "--model", model, "--recipe", "robust", "--augment", "flip", "geometry",
        "--data", str(demo_dataset_dir),
    )  # fmt: skip
    assert partial.train.augment.rotate_degrees == robust["augment"].rotate_degrees
    assert partial.train.augment.noise == 0.0 and partial.recipe_changes == ("augment",)


def test_a_model_without_a_robust_recipe_says_so(demo_dataset_dir: Path, app: AppTest) -> None:
    result = run_cli(
        "train", "--data", str(demo_dataset_dir), "--model", "cnn_classic", "--recipe", "robust"
    )
    assert result.returncode == 2
    assert "cnn_classic has no robust recipe" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    app.run()
    app.switch_page("app_pages/train.py").run()
    app.selectbox(key="train_model").select("cnn_classic").run()
    assert not [radio for radio in app.radio if radio.key == "train_recipe_cnn_classic"]
    app.selectbox(key="train_model").select("cnn_fast").run()
    assert app.radio(key="train_recipe_cnn_fast").options == ["Fast", "Robust", "Custom"]


def as_recipe_run(run_id: str, recipe: str, changed: list[str]) -> None:
    """Make a tiny run's config.json say it trained `recipe` with `changed` options."""
    folder = load_run(run_id).path
    config = json.loads((folder / "config.json").read_text())
    config["recipe"] = {"name": recipe, "changed": changed}
    (folder / "config.json").write_text(json.dumps(config))


def test_a_recipe_record_is_measured_from_its_runs_and_refuses_other_runs(
    demo_dataset_dir: Path, tmp_path: Path
) -> None:
    seeds = [fit(tiny_request(demo_dataset_dir, epochs=1, seed=seed)).run_id for seed in (0, 1)]
    as_recipe_run(seeds[0], "cnn_fast", [])
    as_recipe_run(seeds[1], "cnn_fast", ["seed"])  # another seed is still the recipe
    with pytest.raises(ValueError, match="not evaluated"):
        measure_recipe([load_run(seeds[0])])
    for run_id in seeds:
        evaluate_run(run_id, bootstrap_samples=100)
        stress_run(run_id, bootstrap_samples=0, moderate_only=True)
    runs = [load_run(run_id) for run_id in seeds]
    record = measure_recipe(runs)
    accuracies = [report_of(run, "test").accuracy for run in runs]
    assert record.recipe == "cnn_fast" and record.seeds == 2 and record.runs == tuple(seeds)
    test_score = record.scores["test"]
    assert test_score.value == pytest.approx(sum(accuracies) / 2)
    assert (test_score.low, test_score.high) == (min(accuracies), max(accuracies))
    worst = [min(moderate_shift_accuracies(run).values()) for run in runs]
    assert record.worst_shift.value == pytest.approx(sum(worst) / 2)
    assert len(record.worst_shift_names) == 2 and record.external == {}
    single = measure_recipe(runs[:1])  # one run: its bootstrap interval
    assert (single.scores["test"].low, single.scores["test"].high) == report_of(
        runs[0], "test"
    ).accuracy_ci
    # Written and read back; a damaged entry is left out, not shown as a number.
    path = tmp_path / "records.json"
    save_recipe_records([record], path)
    assert load_recipe_records(path)["cnn_fast"] == record
    stored = json.loads(path.read_text())
    stored["cnn_fast_robust"] = {"recipe": "cnn_fast_robust"}
    path.write_text(json.dumps(stored))
    assert set(load_recipe_records(path)) == {"cnn_fast"}
    assert load_recipe_records(tmp_path / "missing.json") == {}
    # Runs that are not the recipe as it is.
    as_recipe_run(seeds[1], "cnn_fast", ["lr"])
    with pytest.raises(ValueError, match=r"changed its recipe \(lr\)"):
        measure_recipe([load_run(seeds[1])])
    as_recipe_run(seeds[1], "cnn_fast_robust", [])
    with pytest.raises(ValueError, match="different recipes"):
        measure_recipe([*runs[:1], load_run(seeds[1])])
    as_recipe_run(seeds[1], None, [])
    with pytest.raises(ValueError, match="used no recipe"):
        measure_recipe([load_run(seeds[1])])
