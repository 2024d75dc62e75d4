"""The HTML report: every section from the stored results, the Compare page's own figures,
offline, CAMs inlined; the `report` command's exits and one-line errors; Compare's button."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.cli.main import main
from core.data import synthetic
from core.evaluation.comparison import paired_tests, paired_verdict
from core.evaluation.evaluate import SPLITS, stored_evaluation
from core.evaluation.external import evaluate_external
from core.evaluation.run_selection import run_labels
from core.evaluation.stress import stress_run
from core.reports import facts
from core.reports.html import ReportError, build_report
from core.runs.registry import RunInfo, load_run
from core.ui import compare_report
from tests import test_compare_page
from tests.test_cli import run_cli
from tests.test_compare_page import Runs
from tests.test_external import make_external_folder

SECTIONS = ("runs", "curves", "evaluations", "official-test", "generalization", "cams", "audit",
            "paired")  # fmt: skip
STRESSED = ("rotation", "blur")

# The Compare page tests' fixtures, shared rather than copied: tiny evaluated runs (and an
# interrupted, a damaged and a weightless one) in this module's own checkpoints, and the page.
checkpoints = test_compare_page.checkpoints
made = test_compare_page.made
app = test_compare_page.app


@pytest.fixture(scope="module")
def generalized(
    made: Runs, demo_dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Runs:
    """The first run stress-tested on two shifts, the second scored on an external folder."""
    stress_run(made.first, shifts=STRESSED, bootstrap_samples=50)
    folder = make_external_folder(demo_dataset_dir, tmp_path_factory.mktemp("external"))
    evaluate_external(made.second, folder, name="site b", class_map={"pit": "pituitary"},
                      bootstrap_samples=50)  # fmt: skip
    return made


def reported_runs(made: Runs) -> list[RunInfo]:
    """Both evaluated runs, the interrupted one and the one without weights."""
    return [load_run(run) for run in (made.first, made.second, made.interrupted, made.no_weights)]


@pytest.fixture(scope="module")
def report(generalized: Runs) -> str:
    """The report of the four runs."""
    return build_report(reported_runs(generalized))


@pytest.fixture(scope="module")
def labels(generalized: Runs) -> dict[str, str]:
    """The runs' names in the report: Compare's labels (run_labels) of the same runs."""
    return run_labels(reported_runs(generalized))


def section_of(report: str, anchor: str) -> str:
    return report.split(f'<section id="{anchor}">', 1)[1].split("</section>", 1)[0]


def test_the_report_has_every_section_and_a_header(report: str) -> None:
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in report and f'href="#{anchor}"' in report
    header = report.split("<nav>", 1)[0]
    assert re.search(r"Made \d{4}-\d\d-\d\d \d\d:\d\d UTC by Brain Tumor Workbench \d", header)
    assert "cores" in header and "torch" in header  # the machine


def test_the_configuration_of_each_run_is_listed(report: str, made: Runs) -> None:
    runs = section_of(report, "runs")
    config = load_run(made.second).config
    settings = ("model", "recipe", "pretrained (ImageNet start)", "image size", "augmentation",
                "epochs (run / planned)", "seed", "training time", "weights source")  # fmt: skip
    for setting in settings:
        assert f"<td>{setting}</td>" in runs
    assert f"<td>{config.data.image_size} px</td>" in runs and "<td>flip</td>" in runs
    assert "<td>missing</td>" in runs  # the run without weights says so


def test_every_evaluation_shows_its_stored_interval(report: str, made: Runs) -> None:
    evaluations = section_of(report, "evaluations")
    for run_id in (made.first, made.second):
        evaluation = stored_evaluation(load_run(run_id))
        for split in SPLITS:
            stored = evaluation.split(split)
            low, high = stored.accuracy_ci
            assert f"{stored.accuracy:.1%} [{low * 100:.1f}, {high * 100:.1f}]" in evaluations
            assert facts.percent(stored.macro_f1, stored.macro_f1_ci) in evaluations
            assert facts.percent(stored.balanced_accuracy, stored.balanced_accuracy_ci) in (
                evaluations
            )
            assert f">{stored.n}</td>" in evaluations and f">{stored.ece:.3f}</td>" in evaluations
    assert "external: site b" in evaluations  # the external set is one of the second's sets
    assert evaluations.count(facts.NOT_EVALUATED) == 2  # the interrupted and weightless runs


def test_each_chart_is_one_plotly_div_and_plotly_js_is_inlined_once(report: str) -> None:
    # curves, accuracy on each split, accuracy against time, 2 confusion matrices, reliability,
    # stress: the Compare page's figures
    assert report.count('class="plotly-graph-div"') == 7
    assert report.count("Plotly.newPlot(") == 7
    assert len(re.findall(r"\* plotly\.js v\d", report)) == 1
    matrices = section_of(report, "official-test")
    assert matrices.count('class="plotly-graph-div"') == 3 and '"heatmap"' in matrices
    assert section_of(report, "generalization").count('class="plotly-graph-div"') == 1


def test_the_report_needs_no_network(report: str) -> None:
    assert not re.search(r"<script[^>]*\bsrc=", report)
    assert "<link" not in report
    # plotly.js itself names web pages in its code (its logo's link, map tiles it never loads
    # here); the report's own markup links nothing outside the file.
    body = report.split("<body>", 1)[1]
    assert not re.search(r"""\b(?:src|href)=["']?(?:https?:)?//""", body)


def test_cams_are_inlined_png_images_and_a_run_without_weights_says_so(report: str) -> None:
    cams = section_of(report, "cams")
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', cams)
    assert len(images) == 2 * 4  # one per class, for each evaluated run with weights
    pixels = cv2.imdecode(np.frombuffer(base64.b64decode(images[0]), np.uint8), cv2.IMREAD_COLOR)
    assert pixels is not None and pixels.ndim == 3 and max(pixels.shape[:2]) <= 224
    assert "hirescam" in cams and "true glioma, predicted" in cams
    assert cams.count("no weights") == 2


def test_generalization_audit_and_paired_tests(
    report: str, made: Runs, labels: dict[str, str]
) -> None:
    generalization = section_of(report, "generalization")
    assert "site b" in generalization and "Other (4)" in generalization
    untested = ", ".join(labels[run] for run in (made.second, made.interrupted, made.no_weights))
    assert f"Not stress-tested: {untested}." in generalization
    audit = section_of(report, "audit")
    assert "duplicate-free test images" in audit and "unseen-scan test" in audit
    paired = section_of(report, "paired")
    first, second = load_run(made.first), load_run(made.second)
    table, problem = paired_tests(first, second)
    assert problem is None
    verdict = paired_verdict(table, labels[made.first], labels[made.second])
    assert verdict.replace("<", "&lt;") in paired
    assert paired.count("<h3>") == 6  # every pair of the four runs
    assert f"{labels[made.interrupted]}: {facts.NOT_EVALUATED}" in paired


def test_the_audit_is_read_only_when_stored(tmp_path: Path) -> None:
    fresh = synthetic.generate_demo_dataset(tmp_path / "fresh")
    assert facts.audit_summary(str(fresh)).note.startswith("not audited")
    assert "not on this machine" in facts.audit_summary(str(tmp_path / "gone")).note


def test_run_text_is_escaped(made: Runs) -> None:
    document = build_report([load_run(made.first)], {made.first: "<script>alert(1)</script>"})
    assert "<script>alert(1)" not in document and "&lt;script&gt;alert(1)" in document
    assert "One run: nothing to pair." in document


def test_no_runs_and_an_unreadable_configuration_are_refused(made: Runs) -> None:
    with pytest.raises(ReportError, match="at least one run"):
        build_report([])
    with pytest.raises(ReportError, match="unreadable configuration"):
        build_report([load_run(made.first), load_run(made.damaged_config)])


def test_the_report_command_writes_the_file(
    generalized: Runs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "shared" / "report.html"  # a missing folder is made
    assert main(["report", generalized.first, generalized.second, generalized.first,
                 "--out", str(out), "--json"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert f'"out": "{out}"' in printed and f'"bytes": {out.stat().st_size}' in printed
    assert out.read_text(encoding="utf-8").count('class="plotly-graph-div"') == 7  # first once
    assert [path.name for path in out.parent.iterdir()] == ["report.html"]  # no temp file left


def test_the_report_command_fails_on_one_line(
    made: Runs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    cases = {
        (): "report needs at least one run",
        ("no_such_run",): "run 'no_such_run' not found",
        (made.damaged_config,): "unreadable configuration",
    }
    for runs, message in cases.items():
        assert main(["report", *runs, "--out", str(tmp_path / "r.html")]) == 2
        error = capsys.readouterr().err
        assert error.startswith("error: ") and message in error and error.count("\n") == 1
    for out, message in ((tmp_path, "is a folder"), (blocker / "r.html", "is not a folder")):
        assert main(["report", made.first, "--out", str(out)]) == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a file"]  # nothing written


def test_python_m_core_report_runs_end_to_end(made: Runs, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = run_cli("report", made.first, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "wrote the report of 1 run(s)" in result.stdout and out.stat().st_size > 1_000_000


def report_downloads(at: AppTest) -> list:
    return [one for one in at.get("download_button") if "report" in one.proto.label]


def test_compare_builds_a_report_to_download(
    app: AppTest, generalized: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not app.button(key="compare_report").disabled  # the default selection: two runs
    app.multiselect(key="compare_runs").set_value([generalized.first, generalized.second]).run()
    assert not report_downloads(app)
    app.button(key="compare_report").click().run()
    assert not app.exception and not app.error
    downloads = report_downloads(app)
    assert len(downloads) == 1 and downloads[0].proto.url.endswith(".html")
    run_ids, _, document = app.session_state[compare_report.REPORT_KEY]
    assert run_ids == (generalized.first, generalized.second)
    assert document.count('class="plotly-graph-div"') == 7
    app.multiselect(key="compare_runs").set_value([generalized.first]).run()
    assert not report_downloads(app)  # another selection needs another report

    def broken(*_: object) -> str:
        raise ReportError("run x has an unreadable configuration (config.json)")

    monkeypatch.setattr(compare_report, "build_report", broken)
    app.button(key="compare_report").click().run()
    assert not app.exception
    assert any("Could not build the report: run x" in error.value for error in app.error)
    app.multiselect(key="compare_runs").set_value([]).run()
    assert app.button(key="compare_report").disabled


def test_the_report_opens_with_compares_verdict(report: str, made: Runs, labels: dict) -> None:
    from core.evaluation.verdict import verdict_line

    line = verdict_line(reported_runs(made), labels)
    header = report.split("<nav>", 1)[0]
    verdict = header.split('<p class="verdict">', 1)[1].split("</p>", 1)[0]
    assert verdict.startswith("<strong>") and "McNemar p = " in verdict
    assert re.sub(r"</?strong>", "**", verdict) == html.escape(line, quote=True)
