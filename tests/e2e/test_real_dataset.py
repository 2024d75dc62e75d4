"""The real MRI dataset in a browser: Home, the Dataset page's counts, gallery and leakage audit.

Skipped without the dataset, required in CI (the real_dataset_dir fixture's rules).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.e2e.browser import playwright_or_skip

playwright_or_skip()  # before anything imports playwright

from playwright.sync_api import Page, expect

from core import paths
from core.imaging.reader import SUPPORTED_EXTENSIONS
from tests.e2e import files, ui
from tests.e2e.server import AppServer

pytestmark = [pytest.mark.browser, pytest.mark.real_data, pytest.mark.slow]

# A cold audit hashes and compares every image (15-30 s here, more beside other work).
AUDIT_TIMEOUT_MS = 300_000
GALLERY_IMAGES = 24  # the gallery's default sample size


def images_per_class(dataset_dir: Path) -> dict[str, dict[str, int]]:
    """split folder -> class -> number of image files, counted on disk."""
    return {
        split.name: {
            label.name: sum(
                1 for file in label.iterdir() if file.suffix.lower() in SUPPORTED_EXTENSIONS
            )
            for label in sorted(split.iterdir())
            if label.is_dir()
        }
        for split in (dataset_dir / "Training", dataset_dir / "Testing")
    }


def number(text: str) -> int:
    return int(text.replace(",", "").strip())


def test_dataset_page_counts_gallery_and_audit(
    real_app: AppServer, page: Page, real_dataset_dir: Path
) -> None:
    on_disk = images_per_class(real_dataset_dir)
    total = sum(sum(per_class.values()) for per_class in on_disk.values())
    ui.open_page(page, real_app.url)
    main = ui.main(page)
    expect(main).to_contain_text(f"{total:,} images in 4 classes")
    expect(main.get_by_text("synthetic demo dataset")).to_have_count(0)
    expect(page.locator(ui.SIDEBAR)).to_contain_text("real images")
    ui.expect_no_exception(page)
    ui.save_screenshot(page, "real-home")

    ui.navigate(page, "Dataset")
    counts = main.get_by_test_id("stDataFrame").first
    for label, training in on_disk["Training"].items():
        testing = on_disk["Testing"][label]
        cells = ui.row_cells(counts, label)
        assert [number(cell) for cell in cells[1:]] == [training, testing, training + testing]
    assert number(ui.row_cells(counts, "total")[-1]) == total
    expect(main.get_by_test_id("stAlert").filter(has_text="largest class")).to_be_visible()
    ui.expect_no_exception(page)
    ui.save_screenshot(page, "real-dataset-overview")

    main.get_by_role("tab", name="Gallery").click()
    gallery = main.get_by_role("tabpanel")
    expect(gallery.get_by_test_id("stImage")).to_have_count(GALLERY_IMAGES)
    captions = gallery.get_by_test_id("stImageCaption").all_text_contents()
    assert set(captions) <= set(on_disk["Training"]), captions
    expect(ui.button(page, "Open", gallery)).to_have_count(GALLERY_IMAGES)
    ui.save_screenshot(page, "real-dataset-gallery")

    main.get_by_role("tab", name="Duplicates and leakage").click()
    audit = main.get_by_role("tabpanel")
    run_audit = ui.button(page, "Run the audit", audit)
    if run_audit.count():  # not yet computed in this session's cache
        run_audit.click()
    expect(ui.metric(audit, "Test images")).to_contain_text(
        str(sum(on_disk["Testing"].values())), timeout=AUDIT_TIMEOUT_MS
    )
    values = {
        label: number(ui.metric_value(audit, label))
        for label in (
            "Test images", "Exact copy in training", "Near copy in training",
            "Duplicate-free test images", "Unseen-scan test images",
        )
    }  # fmt: skip
    expect(ui.button(page, "Run the audit", audit)).to_have_count(0)  # done: the results replace it
    leaked = values["Exact copy in training"] + values["Near copy in training"]
    assert values["Exact copy in training"] > 150, values  # the dataset's known leak
    assert leaked + values["Duplicate-free test images"] == values["Test images"], values
    # Same-scan slices are left out too: a strict subset of the duplicate-free test.
    assert 0 < values["Unseen-scan test images"] < values["Duplicate-free test images"], values
    subsets = audit.get_by_test_id("stDataFrame").first
    expect(subsets).to_contain_text("unseen-scan test")
    pairs = audit.get_by_test_id("stDataFrame").locator("tr[role='row']")
    expect(pairs.filter(has_text="cross-split").first).to_be_attached()
    expect(audit).to_contain_text(re.compile(r"\d+ exact and \d+ near pairs in all"))
    ui.wait_for_elements(page)
    ui.expect_no_exception(page)
    ui.save_screenshot(page, "real-dataset-audit")


@pytest.fixture(scope="module")
def real_runs(real_app: AppServer, real_dataset_dir: Path) -> list[str]:
    """A short cnn_fast, a short ImageNet MobileNetV2 (its recipe) and a short cnn_classic on a
    subset of the real images, trained in this process into the server's checkpoints."""
    from core.training.fit import fit
    from core.training.request import make_request

    saved = os.environ.get(paths.CHECKPOINTS_ENV)
    os.environ[paths.CHECKPOINTS_ENV] = str(real_app.checkpoints_dir)
    try:
        common = {"data_root": real_dataset_dir, "recipe": "auto", "subset_per_class": 60}
        cnn = fit(make_request(model="cnn_fast", epochs=2, image_size=64, **common))
        mobilenet = fit(make_request(model="mobilenet_v2", epochs=1, image_size=96, **common))
        classic = fit(make_request(model="cnn_classic", epochs=1, image_size=64, **common))
    finally:
        if saved is None:
            os.environ.pop(paths.CHECKPOINTS_ENV, None)
        else:
            os.environ[paths.CHECKPOINTS_ENV] = saved
    assert cnn.status == mobilenet.status == classic.status == "completed"
    return [cnn.run_id, mobilenet.run_id, classic.run_id]


def compute_probes_and_embedding(page: Page, runs: int) -> None:
    """Press the Inside page's buttons for the layer probes and the embedding; both appear."""
    main = ui.main(page)
    ui.button(page, f"Compute layer probes for {runs} run(s)").click()
    expect(main).to_contain_text("nearest-neighbour", timeout=AUDIT_TIMEOUT_MS)
    ui.button(page, "Compute the embedding").click()
    expect(main).to_contain_text("Hover over a point", timeout=AUDIT_TIMEOUT_MS)
    ui.wait_for_elements(page)
    ui.expect_no_exception(page)


def hover_a_projected_point(page: Page) -> tuple[float, float]:
    """Move the mouse over the embedding projector until a point's tooltip shows its image;
    where it did. The points are drawn on a canvas, so a grid of positions is swept."""
    chart = ui.main(page).get_by_test_id("stVegaLiteChart").first
    chart.scroll_into_view_if_needed()
    box = chart.bounding_box()
    assert box is not None
    thumbnail = page.locator("#vg-tooltip-element img")
    for row in range(5, 95, 3):
        for column in range(5, 90, 3):
            x, y = box["x"] + box["width"] * column / 100, box["y"] + box["height"] * row / 100
            page.mouse.move(x, y)
            if thumbnail.count() and thumbnail.first.is_visible():
                return x, y
    raise AssertionError("no point of the projector showed a thumbnail")


def test_inside_page_opens_every_view_for_a_custom_and_a_pretrained_run(
    real_app: AppServer, page: Page, real_dataset_dir: Path, real_runs: list[str]
) -> None:
    ui.open_page(page, real_app.url, "inside")
    main = ui.main(page)
    stage_captions = main.get_by_test_id("stImageCaption").filter(has_text="stage 1 (")
    labels = real_app.run_labels()  # the page names unnamed runs by model and time
    ui.choose_exactly(page, "inside_runs", [labels[run] for run in real_runs[:2]])
    expect(main).to_contain_text("16 kernels of 3 x 3")  # cnn_fast: one grey input channel
    expect(main).to_contain_text("32 kernels of 3 x 3")  # MobileNetV2: red, green, blue
    expect(stage_captions).to_have_count(2)  # a test image of the dataset, for both runs
    ui.widget(page, "inside_image_source").get_by_text("an upload").click()
    page.locator(".st-key-inside_image input[type='file']").set_input_files(
        str(files.first_testing_jpeg(real_dataset_dir, "glioma"))
    )
    expect(stage_captions).to_have_count(2)
    compute_probes_and_embedding(page, runs=2)
    x, y = hover_a_projected_point(page)
    src = page.locator("#vg-tooltip-element img").first.get_attribute("src") or ""
    assert src.startswith("data:image/jpeg;base64,")
    page.mouse.click(x, y)  # opens the image with its prediction and map
    expect(main.get_by_test_id("stImageCaption").filter(has_text="predicted ")).to_be_visible()
    ui.expect_no_exception(page)
    ui.save_screenshot(page, "real-inside-pair")

    # The tutorial CNN too: its filters, feature maps, probes and embedding.
    ui.choose_exactly(page, "inside_runs", [labels[run] for run in real_runs[2:]])
    expect(main).to_contain_text("32 kernels of 3 x 3")  # cnn_classic's first convolution
    ui.widget(page, "inside_image_source").get_by_text("a test image").click()
    expect(stage_captions).to_have_count(1)
    compute_probes_and_embedding(page, runs=1)
    ui.save_screenshot(page, "real-inside-classic")
