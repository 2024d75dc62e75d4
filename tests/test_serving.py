"""Serving to a lab: the dataset allow-list (BTW_DATA_ROOTS), read-only mode (BTW_READ_ONLY)
and the login gate, as policy functions and as the pages show them; the CLI ignores them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import paths, serving
from core.cli.main import main as cli_main
from core.studies.plan import parse_setting, plan_study
from core.training.fit import fit
from core.ui.memo import shared_memo
from tests.conftest import PROJECT_ROOT, TIMEOUT
from tests.test_data import make_kaggle
from tests.test_training import tiny_request

READ_ONLY_WORDS = "This server is read-only"


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    """An allowed root holding a dataset folder, and a folder outside it."""
    allowed = tmp_path / "allowed"
    (allowed / "mri").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    return allowed, outside


# --- the policy -------------------------------------------------------------------------------


def test_without_an_allow_list_every_folder_is_allowed(
    roots: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(paths.DATA_ROOTS_ENV, raising=False)
    assert paths.allowed_data_roots() is None
    assert serving.folder_refusal(roots[1], None) is None
    assert serving.dataset_folder_refusal(roots[1]) is None
    monkeypatch.setenv(paths.DATA_ROOTS_ENV, "  ")  # blank is unset, not "nothing allowed"
    assert serving.dataset_folder_refusal(roots[1]) is None


def test_a_folder_inside_a_root_is_allowed_and_one_outside_is_refused(
    roots: tuple[Path, Path],
) -> None:
    allowed, outside = roots
    assert serving.folder_refusal(allowed, [allowed]) is None
    assert serving.folder_refusal(allowed / "mri", [allowed]) is None
    refusal = serving.folder_refusal(outside, [allowed])
    assert refusal is not None and "outside the dataset folders" in refusal
    assert str(allowed) in refusal and paths.DATA_ROOTS_ENV in refusal


def test_a_dot_dot_escape_is_judged_by_where_it_leads(roots: tuple[Path, Path]) -> None:
    allowed, outside = roots
    escape = allowed / "mri" / ".." / ".." / "outside"
    refusal = serving.folder_refusal(escape, [allowed])
    assert refusal is not None and f"it leads to {outside}" in refusal
    # `..` that stays inside is fine.
    assert serving.folder_refusal(allowed / "mri" / ".." / "mri", [allowed]) is None


def test_a_symlink_inside_a_root_that_leads_outside_is_refused(roots: tuple[Path, Path]) -> None:
    allowed, outside = roots
    link = allowed / "looks-inside"
    link.symlink_to(outside, target_is_directory=True)
    refusal = serving.folder_refusal(link, [allowed])
    assert refusal is not None and str(outside) in refusal
    assert serving.folder_refusal(link / "Training", [allowed]) is not None


def test_a_root_given_through_a_symlink_allows_its_real_folder(
    roots: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed, _ = roots
    link = allowed.parent / "root-link"
    link.symlink_to(allowed, target_is_directory=True)
    monkeypatch.setenv(paths.DATA_ROOTS_ENV, str(link))
    assert paths.allowed_data_roots() == [allowed.resolve()]
    assert serving.dataset_folder_refusal(allowed / "mri") is None
    assert serving.dataset_folder_refusal(link / "mri") is None


def test_a_prefix_string_is_not_a_parent(tmp_path: Path) -> None:
    root = tmp_path / "data" / "mri"
    sibling = tmp_path / "data" / "mri2"
    for folder in (root, sibling):
        folder.mkdir(parents=True)
    assert serving.folder_refusal(sibling, [root]) is not None
    assert serving.folder_refusal(root / "2", [root]) is None


def test_the_roots_are_read_from_the_environment_with_the_path_separator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv(paths.DATA_ROOTS_ENV, f" {first} {os.pathsep}{os.pathsep}{second}")
    assert paths.allowed_data_roots() == [first.resolve(), second.resolve()]
    assert serving.dataset_folder_refusal(second / "x") is None
    assert serving.dataset_folder_refusal(tmp_path / "c") is not None
    monkeypatch.setenv(paths.DATA_ROOTS_ENV, os.pathsep)  # names no folder: nothing allowed
    assert paths.allowed_data_roots() == []
    assert "names no folder" in (serving.dataset_folder_refusal(first) or "")


def test_the_demo_is_allowed_under_any_allow_list(
    roots: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.DATA_ROOTS_ENV, str(roots[0]))
    assert serving.dataset_folder_refusal(paths.demo_dataset_dir()) is None
    assert serving.dataset_folder_refusal(paths.demo_dataset_dir().parent) is not None


def test_an_unresolvable_folder_is_refused_not_raised(roots: tuple[Path, Path]) -> None:
    refusal = serving.folder_refusal("bad\0name", [roots[0]])
    assert refusal is not None and "cannot be resolved" in refusal


def test_the_folders_offered_are_the_roots_and_their_visible_subfolders(
    roots: tuple[Path, Path],
) -> None:
    allowed, outside = roots
    (allowed / ".cache").mkdir()
    (allowed / "notes.txt").write_text("not a folder")
    (allowed / "escape").symlink_to(outside, target_is_directory=True)
    (allowed / "inner-link").symlink_to(allowed / "mri", target_is_directory=True)
    missing = allowed.parent / "not-there"
    offered = serving.allowed_dataset_folders([allowed, missing])
    assert offered == [allowed, allowed / "inner-link", allowed / "mri", missing]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), (" YES ", True), ("on", True), ("0", False), ("", False),
     ("no", False), ("false", False)],
)  # fmt: skip
def test_read_only_reads_the_usual_words(
    value: str, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(serving.READ_ONLY_ENV, value)
    assert serving.read_only() is expected


# --- the pages ---------------------------------------------------------------------------------


def opened(page: str) -> AppTest:
    """Home.py, then `page`, with an empty memo (the environment is the test's)."""
    shared_memo.clear()
    at = AppTest.from_file(str(PROJECT_ROOT / "Home.py"), default_timeout=TIMEOUT)
    at.run()
    if page != "Home.py":
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    """Every caption, markdown, info and error text of the page and its sidebar."""
    elements = [*at.caption, *at.markdown, *at.info, *at.error, *at.warning]
    return "\n".join(str(element.value) for element in elements)


def button_keys(at: AppTest) -> set[str]:
    return {button.key for button in at.button if button.key}


def test_dataset_page_offers_only_the_allowed_folders(
    roots: tuple[Path, Path], demo_dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed, _ = roots
    dataset = make_kaggle(allowed / "kaggle", per_class=3, classes=("cats", "dogs"))
    monkeypatch.setenv(paths.DATA_ROOTS_ENV, str(allowed))
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(demo_dataset_dir))
    at = opened("app_pages/dataset.py")
    assert not any(box.key == "dataset_path" for box in at.text_input)  # no free text
    choice = at.selectbox(key="dataset_choice")
    assert choice.options == [str(allowed), str(dataset), str(allowed / "mri")]
    choice.set_value(str(dataset))
    at.button(key="use_dataset").click().run()
    assert not at.exception, at.exception
    assert at.dataframe[0].value.loc["cats", "train"] == 3


def test_a_folder_outside_the_allow_list_in_the_link_is_refused(
    roots: tuple[Path, Path], demo_dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed, outside = roots
    make_kaggle(outside / "secret", per_class=3)
    monkeypatch.setenv(paths.DATA_ROOTS_ENV, str(allowed))
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(demo_dataset_dir))
    shared_memo.clear()
    at = AppTest.from_file(str(PROJECT_ROOT / "Home.py"), default_timeout=TIMEOUT)
    at.query_params["data"] = str(allowed / ".." / "outside" / "secret")
    at.run()
    assert not at.exception, at.exception
    assert any("outside the dataset folders" in error.value for error in at.error)
    assert "secret" not in " ".join(str(element.value) for element in at.dataframe)


def test_a_configured_dataset_outside_the_allow_list_is_refused_with_a_message(
    roots: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed, outside = roots
    monkeypatch.setenv(paths.DATA_ROOTS_ENV, str(allowed))
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(make_kaggle(outside / "kaggle")))
    at = opened("Home.py")
    refusals = [error.value for error in at.error if "Cannot open the dataset" in error.value]
    assert refusals and "outside the dataset folders" in refusals[0]
    # The Dataset page still lets the user pick an allowed folder.
    at.switch_page("app_pages/dataset.py").run()
    assert not at.exception and at.selectbox(key="dataset_choice").options[0] == str(allowed)


@pytest.fixture
def read_only_demo(demo_dataset_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(demo_dataset_dir))
    monkeypatch.setenv(serving.READ_ONLY_ENV, "1")


def test_the_sidebar_says_read_only_server(read_only_demo: None) -> None:
    at = opened("Home.py")
    assert any("read-only server" in str(markdown.value) for markdown in at.sidebar.markdown)


@pytest.mark.parametrize("read_only", [False, True])
def test_train_has_no_start_button_on_a_read_only_server(
    read_only: bool, demo_dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(demo_dataset_dir))
    monkeypatch.setenv(serving.READ_ONLY_ENV, "1" if read_only else "0")
    at = opened("app_pages/train.py")
    offered = {"train_start", "train_estimate"} & button_keys(at)
    assert offered == (set() if read_only else {"train_start", "train_estimate"})
    assert (f"{READ_ONLY_WORDS}: training is not offered" in texts(at)) is read_only
    if read_only:  # the recipes and their measurements are still there to read
        assert at.selectbox(key="train_model").value


@pytest.fixture(scope="module")
def own_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A checkpoints folder of this module's own, with one completed run never evaluated."""
    folder = tmp_path_factory.mktemp("serving-checkpoints")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(paths.CHECKPOINTS_ENV, str(folder))
        yield folder


@pytest.fixture(scope="module")
def unevaluated_run(own_checkpoints: Path, demo_dataset_dir: Path) -> str:
    return fit(tiny_request(demo_dataset_dir, epochs=1)).run_id


@pytest.mark.parametrize("read_only", [False, True])
def test_compare_changes_no_run_on_a_read_only_server(
    read_only: bool, unevaluated_run: str, demo_dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(demo_dataset_dir))
    monkeypatch.setenv(serving.READ_ONLY_ENV, "1" if read_only else "0")
    at = opened("app_pages/compare.py")
    changing = {"manage_rename", "manage_tags", "manage_delete", "compare_evaluate"}
    changing |= {"compare_stress", "compare_warnings"}
    assert (changing & button_keys(at)) == (set() if read_only else changing)
    external_form = any(box.key == "compare_external_folder" for box in at.text_input)
    assert external_form is not read_only
    withheld = texts(at)
    for action in ("renaming, tagging or deleting a run", "evaluating runs",
                   "scoring the runs on an external set"):  # fmt: skip
        assert (f"{READ_ONLY_WORDS}: {action}" in withheld) is read_only
    assert unevaluated_run in " ".join(at.dataframe[0].value["run"].astype(str))  # still listed


def test_an_external_set_outside_the_allow_list_is_refused_on_compare_and_studies(
    roots: tuple[Path, Path],
    unevaluated_run: str,
    demo_dataset_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    allowed, outside = roots
    elsewhere = str(make_kaggle(outside / "hospital", classes=("glioma", "notumor")))
    # The session's demo is a copy outside data/.cache, so it needs a root of its own here.
    monkeypatch.setenv(paths.DATA_ROOTS_ENV, f"{allowed}{os.pathsep}{demo_dataset_dir}")
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(demo_dataset_dir))
    at = opened("app_pages/compare.py")
    at.text_input(key="compare_external_folder").input(elsewhere)
    next(button for button in at.button if button.label.startswith("Score ")).click().run()
    assert not at.exception, at.exception
    assert any("Cannot score on this folder" in e.value and "outside" in e.value for e in at.error)
    at = opened("app_pages/studies.py")
    at.text_input(key="study_external").input(elsewhere)
    next(b for b in at.button if b.label == "Plan and estimate the time").click().run()
    assert not at.exception, at.exception
    assert any("Cannot plan this study" in e.value and "outside" in e.value for e in at.error)


def test_studies_refuses_new_and_resumed_studies_on_a_read_only_server(
    read_only_demo: None, demo_dataset_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.CHECKPOINTS_ENV, str(tmp_path / "checkpoints"))
    study = plan_study(
        data_root=demo_dataset_dir, settings=[parse_setting("cnn_fast", {})], sizes=["10"],
        seeds=1, min_steps=1, stress=False,
    )  # fmt: skip
    study.save()  # ready, never run: Resume would start it
    monkeypatch.setenv(serving.READ_ONLY_ENV, "0")
    at = opened("app_pages/studies.py")
    assert "study_resume" in button_keys(at)
    assert any(button.label == "Plan and estimate the time" for button in at.button)
    monkeypatch.setenv(serving.READ_ONLY_ENV, "1")
    at = opened("app_pages/studies.py")
    assert "study_resume" not in button_keys(at)
    assert not any(button.label == "Plan and estimate the time" for button in at.button)
    withheld = texts(at)
    assert f"{READ_ONLY_WORDS}: planning or launching a study" in withheld
    assert f"{READ_ONLY_WORDS}: resuming a study" in withheld


def test_the_audit_is_not_run_on_a_read_only_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(make_kaggle(tmp_path / "never-audited")))
    monkeypatch.setenv(serving.READ_ONLY_ENV, "1")
    at = opened("app_pages/dataset.py")
    assert "run_audit" not in button_keys(at)
    assert f"{READ_ONLY_WORDS}: running the audit" in texts(at)


def test_with_auth_configured_a_visitor_sees_only_the_login(
    demo_dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(demo_dataset_dir))
    shared_memo.clear()
    at = AppTest.from_file(str(PROJECT_ROOT / "Home.py"), default_timeout=TIMEOUT)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback"}
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception, at.exception
    assert [button.label for button in at.button] == ["Log in"]
    assert "synthetic demo" not in texts(at)  # neither the sidebar nor the page ran
    at.user = {"is_logged_in": True, "name": "Ada", "email": "ada@lab.example"}
    at.run()
    assert not at.exception, at.exception
    assert "Logged in as Ada" in texts(at) and "Log out" in [b.label for b in at.button]
    assert "300 images in 4 classes" in texts(at)


# --- the command line ---------------------------------------------------------------------------


def test_the_cli_ignores_the_allow_list_and_read_only_mode(
    roots: tuple[Path, Path],
    demo_dataset_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    allowed, outside = roots
    monkeypatch.setenv(paths.DATA_ROOTS_ENV, str(allowed))
    monkeypatch.setenv(serving.READ_ONLY_ENV, "1")
    monkeypatch.setenv(paths.CHECKPOINTS_ENV, str(tmp_path / "checkpoints"))
    assert cli_main(["dataset", str(make_kaggle(outside / "kaggle")), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["classes"] == ["a", "b"]
    arguments = ["train", "--data", str(demo_dataset_dir), "--model", "cnn_fast", "--epochs", "1",
                 "--image-size", "32", "--subset", "8", "--quiet", "--json"]  # fmt: skip
    assert cli_main(arguments) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "completed"
