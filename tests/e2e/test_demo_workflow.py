"""A person's first session on the demo data, in a real browser: look around, train, compare,
classify, and two people at once. The tests share one server and run in this file's order:
the runs trained in one test are the ones compared and used in the next.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.browser import playwright_or_skip

playwright_or_skip()  # before anything imports playwright

from playwright.sync_api import Locator, Page, expect

from core.ui.run_management import SELECTION_KEY
from tests.e2e import files, ui
from tests.e2e.server import AppServer

pytestmark = pytest.mark.browser

PAGES = ["", "dataset", "train", "compare", "studies", "inside", "classify"]
DEMO_IMAGES = "300"


def test_first_run_shows_the_demo_dataset_and_every_page_loads(
    demo_app: AppServer, page: Page, project_data_is_a_dataset: bool
) -> None:
    if project_data_is_a_dataset:
        pytest.skip("data/ holds a dataset, so this machine has no 'nothing configured' first run")
    ui.open_page(page, demo_app.url)
    main = ui.main(page)
    expect(main.get_by_text("synthetic demo dataset")).to_be_visible()
    expect(main).to_contain_text(f"{DEMO_IMAGES} images in 4 classes")
    expect(page.locator(ui.SIDEBAR)).to_contain_text("synthetic demo")
    ui.expect_no_exception(page)
    ui.save_screenshot(page, "demo-home")
    for path in PAGES[1:]:
        ui.navigate(page, ui.PAGE_TITLES[path].split()[0])
        ui.expect_no_exception(page)
        ui.save_screenshot(page, f"demo-{path}-empty")
    # A fresh page load of each URL too: that is a new session starting on that page.
    for path in PAGES:
        ui.open_page(page, demo_app.url, path)
        ui.expect_no_exception(page)


# --- Training -----------------------------------------------------------------------------------

LIVE_CHART = f"{ui.MAIN} [data-testid='stPlotlyChart'] .js-plotly-plot"
# Total points of the live chart once it has more than `arg[1]` (else false), for wait_for_function.
CHART_GREW = """([selector, previous]) => {
    const plot = document.querySelector(selector);
    if (!plot || !plot._fullData) return false;
    const points = plot._fullData.reduce((total, trace) => total + (trace._length || 0), 0);
    return points > previous ? points : false;
}"""
CHART_UPDATES_TO_SEE = 3


@pytest.fixture(scope="module")
def trained_runs() -> dict[str, str]:
    """Run ids that the training test creates through the page, for the tests after it."""
    return {}


def attached_run(url: str) -> str | None:
    """The run id in the page's URL (the Train page's `?run=`), if any."""
    found = re.search(r"[?&]run=([^&]+)", url)
    return found.group(1) if found else None


def start_cnn_fast(page: Page, *, epochs: int) -> str:
    """Fill the form for a short custom-CNN run at the smallest image size; return its run id."""
    ui.choose(page, "train_model", re.compile(r"^cnn_fast"))
    ui.widget(page, "train_recipe_cnn_fast").get_by_text("Custom", exact=True).click()
    ui.set_number(page, "train_epochs_cnn_fast_custom", epochs)
    ui.slide_to_start(page, "train_image_size_cnn_fast_custom")
    expect(ui.widget(page, "train_image_size_cnn_fast_custom")).to_contain_text("64")
    # Every epoch runs: its length is predictable.
    ui.set_number(page, "train_patience_cnn_fast_custom", 0)
    before = attached_run(page.url)
    ui.button(page, "Start training").click()
    page.wait_for_url(lambda url: attached_run(url) not in (None, before))
    run_id = attached_run(page.url)
    expect(ui.main(page)).to_contain_text(f"run {run_id}")
    return run_id


def chart_points_after(page: Page, previous: int) -> int:
    """Wait until the live chart has more points than `previous`; return how many."""
    grown = page.wait_for_function(
        CHART_GREW, arg=[LIVE_CHART, previous], timeout=ui.TRAINING_TIMEOUT_MS
    )
    return int(grown.json_value())


def live_progress(page: Page) -> Locator:
    return ui.progress_bars(ui.main(page)).first


def test_train_watch_reattach_and_cancel(
    demo_app: AppServer, page: Page, trained_runs: dict[str, str]
) -> None:
    ui.open_page(page, demo_app.url, "train")
    completed = start_cnn_fast(page, epochs=40)
    # The bar and the loss chart move on their own (the page polls the job every 2 s).
    epoch_of_40 = re.compile(r"Epoch \d+/40")
    expect(live_progress(page)).to_contain_text(epoch_of_40, timeout=ui.TRAINING_TIMEOUT_MS)
    points = [chart_points_after(page, 0)]
    for _ in range(CHART_UPDATES_TO_SEE - 1):
        points.append(chart_points_after(page, points[-1]))
    assert points == sorted(set(points)), points
    # The sidebar follows the job too (it stayed at 'Preparing' before it refreshed itself).
    expect(page.locator(ui.SIDEBAR)).to_contain_text(epoch_of_40)
    ui.save_screenshot(page, "demo-train-running")

    page.reload()  # a new browser session: the URL brings it back to the same job
    ui.expect_title(page, "Train")
    expect(ui.main(page)).to_contain_text(f"run {completed}")
    expect(live_progress(page)).to_be_visible()
    chart_points_after(page, points[-1] - 1)  # the history drawn so far is all there

    expect(live_progress(page)).to_contain_text("Completed", timeout=ui.TRAINING_TIMEOUT_MS)
    expect(ui.metric(ui.main(page), "Validation accuracy")).to_be_visible()
    expect(ui.metric(ui.main(page), "Best epoch")).to_contain_text("of 40")
    ui.wait_for_elements(page)
    ui.expect_no_exception(page)
    ui.save_screenshot(page, "demo-train-completed")

    cancelled = start_cnn_fast(page, epochs=300)
    assert cancelled != completed
    # Cancel once an epoch is complete, so the cancelled run has a history to compare.
    past_first_epoch = re.compile(r"Epoch ([2-9]|\d\d+)/300")  # the page skips epochs between polls
    expect(live_progress(page)).to_contain_text(past_first_epoch, timeout=ui.TRAINING_TIMEOUT_MS)
    ui.button(page, "Cancel").click()
    expect(live_progress(page)).to_contain_text("Cancelled", timeout=ui.TRAINING_TIMEOUT_MS)
    expect(ui.button(page, "Cancel")).to_have_count(0)
    ui.wait_for_elements(page)
    ui.expect_no_exception(page)

    jobs = ui.main(page).get_by_test_id("stExpander").filter(has_text="Jobs of this server")
    jobs.get_by_text("Jobs of this server").click()
    expect(jobs).to_contain_text(completed)
    expect(jobs).to_contain_text("Completed")
    expect(page.locator(ui.SIDEBAR)).to_contain_text("No job running.")
    ui.save_screenshot(page, "demo-train-cancelled")
    trained_runs.update(completed=completed, cancelled=cancelled)


def demo_image(server: AppServer, label: str = "glioma") -> Path:
    """A test image of the dataset the server shows (the demo, generated on its first page)."""
    from core.data.locate import resolve_dataset_dir

    with server.core_paths():
        root = resolve_dataset_dir(server.data)
    return sorted((root / "Testing" / label).glob("*.png"))[0]


def train_runs_directly(server: AppServer) -> dict[str, str]:
    """The training test's two runs made through the core API, for a test run on its own (-k)."""
    from core.data.locate import resolve_dataset_dir
    from core.evaluation.evaluate import evaluate_run
    from core.events import Events
    from core.training.fit import fit
    from core.training.request import make_request

    with server.core_paths():
        root = resolve_dataset_dir(server.data)
        options = {"model": "cnn_fast", "image_size": 64, "lr": 3e-3, "patience": 0}
        completed = fit(make_request(data_root=root, epochs=3, **options)).run_id
        evaluate_run(completed)
        stop = threading.Event()
        events = Events()
        events.add_callback("epoch", lambda record: stop.set())
        long_run = make_request(data_root=root, epochs=50, **options)
        cancelled = fit(long_run, events=events, cancel=stop)
        assert cancelled.status == "cancelled"
    return {"completed": completed, "cancelled": cancelled.run_id}


@pytest.fixture
def demo_runs(demo_app: AppServer, trained_runs: dict[str, str]) -> dict[str, str]:
    """A completed (and evaluated) run and a cancelled one on the demo server."""
    if not trained_runs:
        trained_runs.update(train_runs_directly(demo_app))
    return trained_runs


# --- Compare ------------------------------------------------------------------------------------


def runs_table_row(page: Page, server: AppServer, run_id: str) -> Locator:
    """The runs table's row of a run, found by the name the table gives it."""
    name = server.run_labels()[run_id]
    return ui.table_row(ui.main(page).get_by_test_id("stDataFrame").first, name)


def expect_curves_of(page: Page, names: list[str]) -> None:
    """One chart overlays every run's loss and accuracy, each with a point per epoch."""
    curves = ui.main(page).get_by_test_id("stTabs").filter(has_text="Per epoch").first
    expect(curves.get_by_test_id("stPlotlyChart").first).to_be_visible()
    traces = ui.plotly_traces(curves.get_by_test_id("stPlotlyChart").first)
    for name in names:
        mine = [trace for trace in traces if trace["name"] == name]
        assert len(mine) == 4 and all(trace["points"] >= 1 for trace in mine), traces


def expect_confusion_matrices_of(page: Page, names: list[str]) -> None:
    details = ui.main(page).get_by_test_id("stTabs").filter(has_text="Confusion matrices").first
    details.get_by_role("tab", name="Confusion matrices").click()
    shown = details.get_by_role("tabpanel")  # the open tab only: the others are hidden
    expect(shown.get_by_test_id("stPlotlyChart")).to_have_count(len(names))
    figures = ui.plotly_figures(shown)
    heatmaps = [figure for figure in figures if figure["traces"][0]["type"] == "heatmap"]
    assert sorted(figure["title"] for figure in heatmaps) == sorted(names), figures
    assert all(figure["traces"][0]["points"] == 4 for figure in heatmaps), figures  # 4 classes


def test_compare_shows_both_runs_their_curves_and_matrices(
    demo_app: AppServer, page: Page, demo_runs: dict[str, str], tmp_path: Path
) -> None:
    completed, cancelled = demo_runs["completed"], demo_runs["cancelled"]
    ui.open_page(page, demo_app.url, "compare")
    expect(runs_table_row(page, demo_app, completed)).to_contain_text("completed")
    expect(runs_table_row(page, demo_app, cancelled)).to_contain_text("cancelled")
    labels = demo_app.run_labels()  # the page names unnamed runs by model and time
    ui.choose_exactly(page, SELECTION_KEY, [labels[completed], labels[cancelled]])
    ui.wait_for_elements(page)
    expect_curves_of(page, [labels[completed], labels[cancelled]])
    # Only a completed run is evaluated (on completion): it alone has test results.
    expect(ui.main(page)).to_contain_text("Accuracy on each split")
    expect_confusion_matrices_of(page, [labels[completed]])
    ui.expect_no_exception(page)
    ui.save_screenshot(page, "demo-compare")
    # An external folder: the demo's test images under other class names, with copies of
    # training images, typed into the form and scored.
    from core.data import synthetic
    from tests.test_external import make_external_folder

    folder = make_external_folder(synthetic.generate_demo_dataset(tmp_path / "demo"), tmp_path)
    ui.widget(page, "compare_external_folder").locator("input").fill(str(folder))
    ui.widget(page, "compare_external_map").locator("input").fill("pit=pituitary")
    ui.button(page, "Score 1 selected run(s) on this folder").click()
    main = ui.main(page)
    expect(main).to_contain_text("copies left out", timeout=120_000)
    expect(main).to_contain_text("Other (4)")
    ui.expect_no_exception(page)
    ui.save_screenshot(page, "demo-compare-external")


# --- Classify -----------------------------------------------------------------------------------


def upload(page: Page, uploads: list[tuple[str, bytes, str]]) -> None:
    """Drop files on the Classify page's uploader."""
    page.locator(".st-key-classify_uploads input[type='file']").set_input_files(
        [{"name": name, "mimeType": mime, "buffer": content} for name, content, mime in uploads]
    )


def expect_prediction_for(page: Page, name: str) -> None:
    """The chosen image: predicted class, a probability per class, the image and its CAM overlay."""
    main = ui.main(page)
    expect(ui.widget(page, "classify_image").locator("input")).to_have_value(name)
    expect(ui.metric(main, "Predicted class")).to_contain_text(
        re.compile("glioma|meningioma|notumor|pituitary")
    )
    captions = main.get_by_test_id("stImageCaption")
    # The gallery above has a thumbnail with the same caption; the full-size image comes last.
    expect(captions.filter(has_text=re.compile(f"^{re.escape(name)}$")).last).to_be_visible()
    expect(captions.filter(has_text="HiResCAM: where the score of")).to_be_visible()
    ui.wait_for_elements(page)
    bars = [figure for figure in ui.plotly_figures(main) if figure["traces"][0]["type"] == "bar"]
    assert bars and bars[-1]["traces"][0]["points"] == 4, bars  # one probability per class


def test_classify_a_jpeg_a_dicom_and_a_broken_file(
    demo_app: AppServer, page: Page, demo_runs: dict[str, str], real_dataset_dir: Path
) -> None:
    scan = files.first_testing_jpeg(real_dataset_dir)
    ui.open_page(page, demo_app.url, "classify")
    expect(ui.widget(page, "classify_run").locator("input")).to_have_value(
        re.compile(re.escape(demo_runs["completed"]))
    )
    upload(
        page,
        [
            (scan.name, scan.read_bytes(), "image/jpeg"),
            ("scan.dcm", files.jpeg_as_dicom(scan), "application/dicom"),
            ("broken.jpg", files.truncated(scan.read_bytes()), "image/jpeg"),
        ],
    )
    main = ui.main(page)
    unreadable = main.get_by_test_id("stAlert").filter(has_text="1 file(s) could not be read")
    expect(unreadable).to_be_visible()
    problems = main.get_by_test_id("stDataFrame").first
    expect(ui.table_row(problems, "broken.jpg")).to_contain_text("truncated")
    results = main.get_by_test_id("stDataFrame").nth(1)
    expect(ui.table_row(results, scan.name)).to_have_count(1)
    expect(ui.table_row(results, "scan.dcm")).to_have_count(1)
    expect(ui.table_row(results, "broken.jpg")).to_have_count(0)
    expect_prediction_for(page, scan.name)
    ui.expect_no_exception(page)
    ui.save_screenshot(page, "demo-classify-jpeg")

    ui.choose(page, "classify_image", "scan.dcm")
    expect_prediction_for(page, "scan.dcm")
    ui.expect_no_exception(page)
    ui.save_screenshot(page, "demo-classify-dicom")


# --- Two people at once -------------------------------------------------------------------------


def test_two_sessions_one_trains_while_the_other_classifies_and_compares(
    demo_app: AppServer, page: Page, second_page: Page, demo_runs: dict[str, str]
) -> None:
    trainer, other = page, second_page
    ui.open_page(trainer, demo_app.url, "train")
    ui.open_page(other, demo_app.url, "classify")
    training = start_cnn_fast(trainer, epochs=40)
    expect(live_progress(trainer)).to_contain_text(
        re.compile(r"Epoch \d+/40"), timeout=ui.TRAINING_TIMEOUT_MS
    )
    points = chart_points_after(trainer, 0)

    # The other person classifies meanwhile, with the completed run.
    image = demo_image(demo_app)
    upload(other, [(image.name, image.read_bytes(), "image/png")])
    expect_prediction_for(other, image.name)
    other_main = ui.main(other)
    expect(other_main).to_contain_text(demo_runs["completed"])
    expect(ui.progress_bars(other_main)).to_have_count(0)  # no job view of the other's training
    expect(ui.button(other, "Cancel")).to_have_count(0)
    expect(other_main).not_to_contain_text(training)
    assert attached_run(other.url) == demo_runs["completed"]  # Classify's own ?run=, not the job
    ui.save_screenshot(other, "two-sessions-classify")

    # ... and compares: the run being trained is listed as running, nothing more.
    ui.navigate(other, "Compare")
    expect(runs_table_row(other, demo_app, training)).to_contain_text("running")
    expect(runs_table_row(other, demo_app, demo_runs["completed"])).to_contain_text("completed")
    expect(ui.progress_bars(other_main)).to_have_count(0)
    ui.expect_no_exception(other)
    ui.save_screenshot(other, "two-sessions-compare")

    # The trainer's page went on as if alone, and finishes.
    assert attached_run(trainer.url) == training
    expect(ui.main(trainer).get_by_test_id("stFileUploader")).to_have_count(0)
    chart_points_after(trainer, points)
    expect(live_progress(trainer)).to_contain_text("Completed", timeout=ui.TRAINING_TIMEOUT_MS)
    expect(ui.main(trainer)).to_contain_text(f"run {training}")
    ui.wait_for_elements(trainer)
    ui.expect_no_exception(trainer)

    # Back on Compare, the new run is complete and evaluated: two runs' matrices side by side.
    ui.open_page(other, demo_app.url, "compare")
    expect(runs_table_row(other, demo_app, training)).to_contain_text("completed")
    labels = demo_app.run_labels()
    both = [labels[demo_runs["completed"]], labels[training]]
    ui.choose_exactly(other, SELECTION_KEY, both)
    ui.wait_for_elements(other)
    expect_curves_of(other, both)
    expect_confusion_matrices_of(other, both)
    ui.expect_no_exception(other)
    ui.save_screenshot(other, "two-sessions-compare-after")


# --- Studies (last: its runs would become the best ones the tests above pick) ------------------


def follow_home_step(page: Page, server: AppServer, number: int, path: str) -> None:
    """From Home, press step `number`'s button and land on the page at `path`."""
    ui.open_page(page, server.url)
    expect(ui.main(page)).to_contain_text(f"{number + 1}. ")
    ui.widget(page, f"home_step_{number}").get_by_role("button").click()
    ui.expect_title(page, ui.PAGE_TITLES[path])
    ui.wait_for_elements(page)


def test_the_home_workflow_leads_from_a_first_visit_to_an_explained_sample(
    demo_app: AppServer, page: Page
) -> None:
    """Only the buttons the pages offer: Home's steps, the audit, the recipe the Train page
    opens on, Compare's evaluation, a Classify sample."""
    started = time.monotonic()
    follow_home_step(page, demo_app, 0, "dataset")
    main = ui.main(page)
    main.get_by_role("tab", name="Duplicates and leakage").click()
    audit = main.get_by_role("tabpanel")
    run_audit = ui.button(page, "Run the audit", audit)
    if run_audit.count():
        run_audit.click()
    ui.metric(audit, "Duplicate-free test images").wait_for(timeout=ui.TRAINING_TIMEOUT_MS)

    follow_home_step(page, demo_app, 1, "train")
    recommended = ui.widget(page, "train_model").locator("input")
    expect(recommended).to_have_value(re.compile(r"^cnn_fast"))  # the recommended model
    ui.button(page, "Start training").click()
    expect(ui.main(page).get_by_text("Classify scans with it")).to_be_visible(
        timeout=ui.TRAINING_TIMEOUT_MS
    )

    follow_home_step(page, demo_app, 2, "compare")
    evaluate = ui.main(page).get_by_role("button", name=re.compile(r"^Evaluate \d+ run"))
    if evaluate.count():
        evaluate.click()
    expect(ui.main(page)).to_contain_text("Accuracy on each split", timeout=ui.TRAINING_TIMEOUT_MS)

    follow_home_step(page, demo_app, 4, "classify")
    ui.widget(page, "classify_samples").get_by_role("button", name="glioma 1").click()
    captions = ui.main(page).get_by_test_id("stImageCaption")
    expect(captions.filter(has_text=re.compile(r"where the score of"))).to_be_visible()
    expect(ui.main(page)).to_contain_text("True class (the dataset's folder): glioma")
    ui.expect_no_exception(page)
    ui.save_screenshot(page, "demo-home-workflow-classified")
    ui.open_page(page, demo_app.url)  # Home now names the best run and its scores
    expect(ui.main(page)).to_contain_text(re.compile(r"best: .*% official"))
    print(f"Home workflow, first visit to a classified sample: {time.monotonic() - started:.0f} s")


def test_a_tiny_study_fills_its_cells_and_draws_its_curves(demo_app: AppServer, page: Page) -> None:
    ui.open_page(page, demo_app.url, "studies")
    main = ui.main(page)
    ui.choose_exactly(page, "study_settings", ["cnn_fast", "cnn_fast:robust"])
    ui.choose_exactly(page, "study_sizes", ["10", "all"])
    ui.set_number(page, "study_seeds", 1)
    ui.set_number(page, "study_epochs", 12)  # cells of several seconds: the page sees them fill
    ui.set_number(page, "study_min_steps", 1)
    ui.widget(page, "study_stress").get_by_role("checkbox").uncheck(force=True)
    ui.button(page, "Plan and estimate the time").click()
    expect(main).to_contain_text("4 cells", timeout=120_000)
    ui.button(page, "Launch the study").click()
    page.wait_for_url(re.compile(r"[?&]study=[0-9T]+Z_study_[0-9a-f]{6}"))
    # The cells fill in while the page watches: some done, some not yet...
    expect(main).to_contain_text(
        re.compile(r"[123] of 4 cells completed"), timeout=ui.TRAINING_TIMEOUT_MS
    )
    ui.save_screenshot(page, "demo-studies-running")
    # ...then all, and the data-efficiency chart: one line per setting over the two sizes.
    expect(main).to_contain_text("4 of 4 cells completed", timeout=ui.TRAINING_TIMEOUT_MS)
    ui.wait_for_elements(page)
    expect(main).to_contain_text("at 10 images per class")
    # Plotly draws after the script's run is over: wait for the chart itself.
    expect(main.locator(".js-plotly-plot").first).to_be_visible()
    lines = [
        trace
        for figure in ui.plotly_figures(main)
        for trace in figure["traces"]
        if trace["name"] in ("cnn_fast (epochs=12)", "cnn_fast (robust, epochs=12)")
    ]
    assert len(lines) >= 2 and all(trace["points"] == 2 for trace in lines[:2]), lines
    ui.expect_no_exception(page)
    ui.save_screenshot(page, "demo-studies")
