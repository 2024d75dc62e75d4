"""Volumes on Classify, in a real browser: a NIfTI volume and a zipped DICOM series uploaded,
browsed with the slider, every slice classified (the probability strip and the table of the
most tumour-like slices) and a chosen slice explained by its CAM, with no exception."""

from __future__ import annotations

import re

import pytest

from tests.e2e.browser import playwright_or_skip

playwright_or_skip()  # before anything imports playwright

from playwright.sync_api import Page, expect

from core.inference.explain import METHOD_CAPTIONS
from tests.e2e import ui
from tests.e2e.server import AppServer

pytestmark = pytest.mark.browser

SLICES = 9
# The overlay's caption, whichever CAM the run's sanity checks made the default.
CAM_CAPTION = re.compile(
    "|".join(re.escape(text.split(":")[0]) + ":" for text in METHOD_CAPTIONS.values())
)


@pytest.fixture(scope="module")
def volumes(demo_app: AppServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A run to classify with on the server, and the two volumes made of the server's demo
    test images: a NIfTI and a zip of a DICOM series written in shuffled order."""
    from core.data.locate import resolve_dataset_dir
    from core.runs.registry import list_runs
    from core.training.fit import fit
    from tests.test_training import tiny_request
    from tests.test_volumes import demo_slices, nifti_bytes, write_series, zip_folder

    with demo_app.core_paths():
        root = resolve_dataset_dir(demo_app.data)
        if not any(info.usable for info in list_runs()):
            fit(tiny_request(root, epochs=1, subset_per_class=10))
    images = demo_slices(root, SLICES)
    folder = tmp_path_factory.mktemp("series")
    write_series(folder, images, seed=7)
    return {"scan.nii.gz": nifti_bytes(images), "series.zip": zip_folder(folder)}


def key_class(key: str) -> str:
    """A widget key as Streamlit writes it into the page's CSS class (dots become dashes)."""
    return re.sub(r"[^a-zA-Z0-9_-]", "-", key)


def classify_every_slice(page: Page, name: str) -> None:
    """Press the volume's button and wait for its strip chart: a line per class, a point per
    slice."""
    base = key_class(f"classify_volume_{name}")
    ui.widget(page, f"{base}_classify_all").get_by_role("button").click()
    strip = ui.widget(page, f"{base}_strip")
    expect(strip.locator(".js-plotly-plot")).to_be_visible()
    ui.wait_for_elements(page)
    (figure,) = ui.plotly_figures(strip)
    assert figure["title"] == "Probability of each class along the axial slices", figure
    traces = figure["traces"]
    assert [trace["name"] for trace in traces] == ["glioma", "meningioma", "notumor", "pituitary"]
    assert all(trace["points"] == SLICES for trace in traces), traces


def expect_slice_explained(page: Page, label: str) -> None:
    """The detail view shows this slice with its predicted class and a CAM overlay."""
    main = ui.main(page)
    expect(ui.widget(page, "classify_image").locator("input")).to_have_value(label)
    ui.wait_for_elements(page)  # the rerun is over: no stale copy of the detail view remains
    captions = main.get_by_test_id("stImageCaption")
    expect(captions.filter(has_text=re.compile(f"^{re.escape(label)}$")).last).to_be_visible()
    expect(captions.filter(has_text=CAM_CAPTION).first).to_be_visible()
    expect(ui.metric(main, "Predicted class")).to_contain_text(
        re.compile("glioma|meningioma|notumor|pituitary")
    )


def test_a_nifti_and_a_dicom_series_are_classified_slice_by_slice(
    demo_app: AppServer, page: Page, volumes: dict[str, bytes]
) -> None:
    ui.open_page(page, demo_app.url, "classify")
    page.locator(".st-key-classify_uploads input[type='file']").set_input_files(
        [
            {"name": name, "mimeType": "application/octet-stream", "buffer": data}
            for name, data in volumes.items()
        ]
    )
    main = ui.main(page)
    for name in volumes:
        expect(main.get_by_role("heading", name=name)).to_be_visible()
    ui.wait_for_elements(page)
    expect(main).to_contain_text("NIfTI-1, 9 x 128 x 128 voxels")
    expect(main).to_contain_text("DICOM series, 9 x 128 x 128 voxels")

    classify_every_slice(page, "scan.nii.gz")
    ranked = main.get_by_test_id("stDataFrame").filter(has_text="tumour score")
    expect(ranked.locator("tbody tr[role='row']")).to_have_count(SLICES)
    # The most tumour-like slice's button shows it below, with its CAM.
    base = key_class("classify_volume_scan.nii.gz_axial_slice")
    first = page.locator(f"[class*='st-key-{base}_open_']").first.get_by_role("button")
    number = int(re.search(r"\d+", first.inner_text()).group())
    first.click()
    ui.wait_for_elements(page)
    expect_slice_explained(page, f"scan.nii.gz [axial {number}/{SLICES}]")
    ui.expect_no_exception(page)
    main.get_by_test_id("stImageCaption").filter(
        has_text=CAM_CAPTION
    ).first.scroll_into_view_if_needed()
    ui.save_screenshot(page, "demo-classify-volume-cam")

    # The series: every slice classified, then the slider moved to the top slice.
    classify_every_slice(page, "series.zip")
    slider = ui.widget(page, key_class("classify_volume_series.zip_axial_slice"))
    slider.get_by_role("slider").press("End")
    ui.wait_for_elements(page)
    expect_slice_explained(page, f"series.zip [axial {SLICES}/{SLICES}]")
    ui.expect_no_exception(page)
    ui.widget(page, key_class("classify_volume_series.zip_strip")).scroll_into_view_if_needed()
    ui.save_screenshot(page, "demo-classify-series-strip")
