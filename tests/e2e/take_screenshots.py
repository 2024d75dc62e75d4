"""Take the README's screenshots in headless Chromium, on the real dataset and existing runs.

    python -m tests.e2e.take_screenshots [--data DIR] [--checkpoints DIR] [--out DIR]

(`make screenshots`.) The runs under --checkpoints (default: the project's checkpoints/) are
copied to a temporary folder first, so taking screenshots never changes them; without a
completed run the Compare and Classify shots are left out. The cache (decoded images, audit)
is the project's, so a second go is quick.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import Locator, Page, expect, sync_playwright

from core import paths
from core.runs.registry import RunInfo, list_runs
from core.studies.plan import STUDIES_FOLDER
from tests.e2e import files, ui
from tests.e2e.browser import chromium_executable, wanted_chromium
from tests.e2e.server import PROJECT_ROOT, AppServer

VIEWPORT = {"width": 1400, "height": 900}
PALETTE_COLOURS = 256  # a palette PNG of the UI is a third of the size and looks the same
DEFAULT_OUT = PROJECT_ROOT / "assets" / "screenshots"
IMAGES_LOADED = "() => Array.from(document.images).every(image => image.complete)"
SHOT_GROUPS = ("dataset", "runs", "studies", "inside")
INSIDE_MODELS = ("cnn_fast", "mobilenet_v2")  # from scratch against pretrained


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=paths.real_dataset_dir())
    parser.add_argument("--checkpoints", type=Path, default=paths.checkpoints_root())
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--only", nargs="+", choices=SHOT_GROUPS, default=list(SHOT_GROUPS),
        help="take only these groups of screenshots",
    )  # fmt: skip
    return parser.parse_args(argv)


def copy_completed_runs(source: Path, target: Path) -> list[RunInfo]:
    """Copies of the completed, undamaged runs with weights; the best validation first."""
    target.mkdir(parents=True, exist_ok=True)
    for info in list_runs(source):
        if info.usable:
            shutil.copytree(source / info.run_id, target / info.run_id)
    studies = source / STUDIES_FOLDER
    if studies.is_dir():  # studies name their cells' runs: copied with them
        shutil.copytree(studies, target / STUDIES_FOLDER)
    copies = list_runs(target)
    return sorted(copies, key=lambda info: -(info.val_accuracy or 0.0))


def settle(page: Page) -> None:
    """Until the script has run, tables and charts are drawn and every image has loaded."""
    ui.wait_for_elements(page)
    page.wait_for_function(IMAGES_LOADED)


def scroll_to(locator: Locator) -> None:
    """Put an element at the top of Streamlit's scrolling main area."""
    locator.first.evaluate("element => element.scrollIntoView({block: 'start'})")


def save(page: Page, out: Path, name: str) -> None:
    path = ui.save_screenshot(page, name, out)
    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(colors=PALETTE_COLOURS)
    small.save(path, optimize=True)
    print(f"{path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path}: "
          f"{path.stat().st_size / 1024:.0f} KB")  # fmt: skip


def dataset_shots(page: Page, server: AppServer, out: Path) -> None:
    ui.open_page(page, server.url)
    settle(page)
    save(page, out, "home")
    ui.navigate(page, "Dataset")
    main = ui.main(page)
    main.get_by_role("tab", name="Gallery").click()
    settle(page)
    save(page, out, "dataset-gallery")
    main.get_by_role("tab", name="Duplicates and leakage").click()
    audit = main.get_by_role("tabpanel")
    run_audit = ui.button(page, "Run the audit", audit)
    if run_audit.count():
        run_audit.click()
    ui.metric(audit, "Duplicate-free test images").wait_for(timeout=300_000)
    page.reload()  # once computed, the audit shows without its button
    ui.expect_title(page, "Dataset")
    main.get_by_role("tab", name="Duplicates and leakage").click()
    settle(page)
    scroll_to(main.get_by_role("tabpanel").get_by_test_id("stMarkdown"))
    save(page, out, "dataset-audit")


def run_shots(page: Page, server: AppServer, best: RunInfo, out: Path, data: Path) -> None:
    ui.open_page(page, server.url, "train", query=f"run={best.run_id}")
    settle(page)
    scroll_to(ui.main(page).locator("h3").filter(has_text="Run"))
    save(page, out, "train-run")

    ui.open_page(page, server.url, "train")
    settle(page)
    scroll_to(ui.main(page).locator("h3").filter(has_text="New training run"))
    save(page, out, "train-recipe")

    ui.open_page(page, server.url, "compare")
    settle(page)
    save(page, out, "compare-runs")
    scroll_to(ui.main(page).locator("h3").filter(has_text="Selected runs"))
    settle(page)
    save(page, out, "compare-verdict")
    scroll_to(ui.main(page).get_by_text("Accuracy on each split"))
    settle(page)
    save(page, out, "compare-results")

    ui.open_page(page, server.url, "classify")
    scans = [
        files.first_testing_jpeg(data, label) for label in ("glioma", "meningioma", "pituitary")
    ]
    page.locator(".st-key-classify_uploads input[type='file']").set_input_files(
        [str(scan) for scan in scans]
    )
    ui.metric(ui.main(page), "Predicted class").wait_for()
    ui.choose(page, "classify_image", scans[0].name)
    settle(page)
    scroll_to(ui.widget(page, "classify_image"))
    save(page, out, "classify")


def study_shots(page: Page, server: AppServer, out: Path) -> None:
    """The newest study's data-efficiency chart and its verdicts."""
    ui.open_page(page, server.url, "studies")
    settle(page)
    scroll_to(ui.main(page).locator("h3").filter(has_text="Results"))
    settle(page)
    save(page, out, "studies")


def inside_shots(page: Page, server: AppServer, completed: list[RunInfo], out: Path) -> None:
    """The first-layer filters and the layer probes of the best (by validation) run of a
    custom CNN and of MobileNetV2, side by side; probes are computed where a run has none."""
    best = {}
    for info in completed:  # best validation first
        if info.config is not None and info.config.model.name in INSIDE_MODELS:
            best.setdefault(info.config.model.name, info)
    if len(best) < len(INSIDE_MODELS):
        print(f"no completed run of each of {', '.join(INSIDE_MODELS)}: no Inside shots")
        return
    query = "&".join(f"run={best[name].run_id}" for name in INSIDE_MODELS)
    print(f"Inside shots of {', '.join(best[name].run_id for name in INSIDE_MODELS)}")
    ui.open_page(page, server.url, "inside", query=query)
    settle(page)
    main = ui.main(page)
    compute = ui.button(page, "Compute layer probes")
    if compute.count():
        compute.click()
        main.get_by_text("nearest-neighbour vote").wait_for(timeout=600_000)
    scroll_to(main.locator("h3").filter(has_text="First-layer filters"))
    settle(page)
    save(page, out, "inside-filters")
    scroll_to(main.locator("h3").filter(has_text="Layer probes"))
    settle(page)
    save(page, out, "inside-probes")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    executable = chromium_executable()
    if executable is None:
        print(f"no Chromium at {wanted_chromium()}: apt-get install chromium", file=sys.stderr)
        return 1
    if not (args.data / "Training").is_dir():
        print(f"no dataset at {args.data} (--data, or {paths.REAL_DATA_ENV})", file=sys.stderr)
        return 1
    expect.set_options(timeout=ui.APP_TIMEOUT_MS)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="btw-screenshots-") as scratch:
        completed = copy_completed_runs(args.checkpoints, Path(scratch) / "checkpoints")
        server = AppServer(
            cache_dir=paths.cache_root(),
            checkpoints_dir=Path(scratch) / "checkpoints",
            log_path=Path(scratch) / "server.log",
            data=args.data,
        )
        with server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable)
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(ui.APP_TIMEOUT_MS)
            if "dataset" in args.only:
                dataset_shots(page, server, args.out)
            if completed and "runs" in args.only:
                run_shots(page, server, completed[0], args.out, args.data)
            elif not completed:
                print(f"no completed run under {args.checkpoints}: no Train/Compare/Classify shots")
            if "studies" in args.only and (args.checkpoints / STUDIES_FOLDER).is_dir():
                study_shots(page, server, args.out)
            if "inside" in args.only:
                inside_shots(page, server, completed, args.out)
            browser.close()
    return 0


if __name__ == "__main__":
    os.chdir(PROJECT_ROOT)
    sys.exit(main(sys.argv[1:]))
