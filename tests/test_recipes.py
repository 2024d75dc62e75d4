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
from core.jobs import JobManager
from core.training.recipes import FAST_CPU_RECIPES, TrainingOptions, recipe_options
from core.training.request import TrainingRequest, make_request
from tests.test_cli import run_cli


def cli_request(*arguments: str) -> TrainingRequest:
    return request_from_arguments(build_parser().parse_args(["train", *arguments]))


def page_request(app: AppTest, model: str, monkeypatch: pytest.MonkeyPatch) -> TrainingRequest:
    """The request the Train page submits for `model` when no widget is touched."""
    submitted: list[TrainingRequest] = []

    def capture(self: JobManager, request: TrainingRequest) -> None:
        submitted.append(request)
        raise RuntimeError("captured")  # stop before a job starts

    monkeypatch.setattr(JobManager, "submit", capture)
    app.run()
    app.switch_page("app_pages/train.py").run()
    app.selectbox(key="train_model").select(model).run()
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
