"""Volumes: NIfTI files (nibabel) and DICOM series (pydicom) read into windowed uint8 slices,
the axial axis found from the file's orientation, limits from headers, clean one-line errors;
`predict` on a volume, and the Classify page browsing and classifying one slice by slice."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from streamlit.testing.v1 import AppTest

from core import paths
from core.imaging.dicom import decode_dicom_values
from core.imaging.pixels import ImageReadError
from core.imaging.reader import read_image
from core.imaging.volumes import dicom_series, volume
from core.imaging.volumes.dicom_series import SeveralSeriesError
from core.imaging.volumes.sources import is_volume_path, list_series, read_volume
from core.imaging.volumes.volume import STORED, window_to_uint8
from core.training.fit import fit
from core.ui.classify_volume import TUMOUR_SCORE, most_tumour_like, slice_probability_chart
from tests.e2e.files import dicom_file, mr_dataset
from tests.test_classify_cam import overlay_caption, upload
from tests.test_cli import run_cli
from tests.test_training import tiny_request

SLICES = 9
SLICE_MM = 2.0  # axial slices 2 mm apart, 1 mm pixels: coronal slices need stretching

# Array axis 0 runs feet to head (S), axis 1 back to front (A), axis 2 right to left (L): the
# axial axis is the first array axis, not the last one a naive reader would slice along.
SAL_AFFINE = np.array(
    [[0.0, 0.0, -1.0, 60.0], [0.0, 1.0, 0.0, -60.0], [SLICE_MM, 0.0, 0.0, -8.0], [0, 0, 0, 1]]
)


# ---------------------------------------------------------------- volumes written for the tests


def demo_slices(demo_dataset_dir: Path, count: int = SLICES) -> list[np.ndarray]:
    """Test images of the demo dataset, one class after another (grey, all the same size)."""
    files = sorted((demo_dataset_dir / "Testing").rglob("*.png"))
    step = max(1, len(files) // count)
    return [read_image(path).pixels for path in files[::step][:count]]


def stored_values(image: np.ndarray) -> np.ndarray:
    """The scanner-like values a slice is stored as (not 0..255: windowing has work to do)."""
    return image.astype(np.int16) * 4 + 100


def nifti_bytes(
    images: list[np.ndarray], *, compressed: bool = True, affine: np.ndarray = SAL_AFFINE
) -> bytes:
    """A NIfTI whose axial slice k, shown radiologically (anterior up), is images[k].

    Axis 1 points anterior, so the display (rows growing posterior) is that axis reversed.
    """
    data = np.stack([stored_values(image)[::-1, :] for image in images])
    image = nib.Nifti1Image(data, affine)
    image.header.set_xyzt_units("mm")
    raw = image.to_bytes()
    return gzip.compress(raw, mtime=0) if compressed else raw


def dicom_slice(
    values: np.ndarray,
    *,
    series_uid: str,
    position: float | None,
    instance: int,
    description: str = "T1 AX",
) -> bytes:
    """One axial MR slice file (16 bits; position None: no ImagePositionPatient/Orientation)."""
    ds = mr_dataset()
    ds.SeriesInstanceUID = series_uid
    ds.SeriesDescription = description
    ds.InstanceNumber = instance
    ds.PixelSpacing = [1.0, 1.0]
    ds.SliceThickness = SLICE_MM
    if position is not None:
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]  # rows to the left, columns to the back
        ds.ImagePositionPatient = [-64.0, -64.0, position]
    ds.set_pixel_data(values.astype(np.uint16), photometric_interpretation="MONOCHROME2",
                      bits_stored=16)  # fmt: skip
    return dicom_file(ds)


def write_series(
    folder: Path,
    images: list[np.ndarray],
    *,
    series_uid: str | None = None,
    positions: bool = True,
    seed: int = 0,
    scales: list[float] | None = None,
) -> str:
    """Slice k at k * SLICE_MM mm (feet to head) in a file named at random, its InstanceNumber
    counting the other way, so neither file order nor InstanceNumber gives the right order."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    names = np.random.default_rng(seed).permutation(len(images))
    for k, image in enumerate(images):
        values = stored_values(image) * (scales[k] if scales else 1.0)
        data = dicom_slice(
            values, series_uid=series_uid, instance=len(images) - k,
            position=k * SLICE_MM if positions else None,
        )  # fmt: skip
        (folder / f"IM{names[k]:04d}").write_bytes(data)
    return series_uid


def zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"scan/{path.relative_to(folder)}")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def images(demo_dataset_dir: Path) -> list[np.ndarray]:
    return demo_slices(demo_dataset_dir)


def shown(volume_read: volume.Volume, image: np.ndarray) -> np.ndarray:
    """How a stored slice must look once windowed with the volume's own window."""
    return window_to_uint8(stored_values(image), volume_read.window)


# ---------------------------------------------------------------- NIfTI


def test_nifti_axial_axis_comes_from_the_affine_not_the_last_array_axis(
    images: list[np.ndarray],
) -> None:
    read = read_volume(nifti_bytes(images), name="scan.nii.gz")
    assert read.format == "NIfTI-1" and read.axis_codes == ("S", "A", "L")
    assert read.array_axis("axial") == 0 and read.array_axis("sagittal") == 2
    side = images[0].shape[0]
    assert [read.slice_count(plane) for plane in read.planes] == [SLICES, side, side]
    for k, image in enumerate(images):
        np.testing.assert_array_equal(read.slice_pixels("axial", k), shown(read, image))
    # Coronal slices: 2 mm between axial slices, 1 mm pixels, stretched to square pixels.
    assert read.slice_pixels("coronal", 0).shape == (round(SLICES * SLICE_MM), side)
    assert read.spacing("coronal") == pytest.approx((1.0, SLICE_MM, 1.0))


def test_uncompressed_nifti_and_a_path_read_the_same(
    images: list[np.ndarray], tmp_path: Path
) -> None:
    path = tmp_path / "scan.nii"
    path.write_bytes(nifti_bytes(images, compressed=False))
    assert is_volume_path(path) and list_series(path) == ()
    from_path = read_volume(path)
    from_bytes = read_volume(nifti_bytes(images), name="scan.nii.gz")
    np.testing.assert_array_equal(from_path.voxels, from_bytes.voxels)
    assert from_path.source == "scan.nii"


def test_a_4d_nifti_is_refused_naming_its_volumes_and_a_trailing_1_is_not() -> None:
    series = nib.Nifti1Image(np.zeros((8, 8, 6, 3), np.float32), np.eye(4)).to_bytes()
    with pytest.raises(ImageReadError) as refused:
        read_volume(series, name="bold.nii")
    assert "holds 3 volumes along its 4th dimension" in str(refused.value)
    assert "8 x 8 x 6 x 3" in str(refused.value)
    one = nib.Nifti1Image(np.arange(384, dtype=np.float32).reshape(8, 8, 6, 1), np.eye(4))
    assert read_volume(one.to_bytes(), name="one.nii").voxels.shape == (8, 8, 6)


def test_oversized_headers_are_refused_before_the_voxels_are_read() -> None:
    def header_only(shape: tuple[int, ...], dtype: type) -> bytes:
        header = nib.Nifti1Header()
        header.set_data_shape(shape)
        header.set_data_dtype(dtype)
        return header.binaryblock + b"\0" * 4  # no voxels at all: reading them would fail

    with pytest.raises(ImageReadError, match="voxels exceeds the 40,000,000-voxel limit"):
        read_volume(header_only((4000, 4000, 4000), np.int16), name="huge.nii")
    with pytest.raises(ImageReadError, match="bytes of voxel data exceed"):
        read_volume(header_only((4000, 4000, 2), np.float64), name="wide.nii")


def test_a_file_over_the_byte_limit_is_refused_unread(
    images: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = nifti_bytes(images)
    monkeypatch.setattr(volume, "MAX_VOLUME_FILE_BYTES", len(data) - 1)
    with pytest.raises(ImageReadError, match=f"file is {len(data):,} bytes, over the"):
        read_volume(data, name="scan.nii.gz")


def test_truncated_and_foreign_files_fail_in_one_line(images: list[np.ndarray]) -> None:
    compressed, raw = nifti_bytes(images), nifti_bytes(images, compressed=False)
    cases = {
        "cut.nii.gz": (compressed[: len(compressed) // 2], "truncated or corrupt NIfTI data"),
        "header.nii.gz": (compressed[:40], "truncated or corrupt gzip data"),
        "cut.nii": (raw[: len(raw) - 500], "truncated or corrupt NIfTI data"),
        "notes.nii.gz": (gzip.compress(b"just text " * 100), "not a NIfTI volume"),
        "cut.zip": (b"PK\x03\x04" + b"\0" * 200, "truncated or corrupt zip"),
        "photo.nii": (b"\x89PNG\r\n\x1a\n" + b"\0" * 600, "not a volume"),
        "empty.nii": (b"", "empty file"),
    }
    for name, (data, reason) in cases.items():
        with pytest.raises(ImageReadError) as refused:
            read_volume(data, name=name)
        message = str(refused.value)
        assert message.startswith(f"{name}: ") and reason in message, message
        assert "\n" not in message


# ---------------------------------------------------------------- DICOM series


def test_a_series_is_sorted_by_position_not_by_file_name_or_instance_number(
    images: list[np.ndarray], tmp_path: Path
) -> None:
    write_series(tmp_path / "series", images, seed=3)
    for source in (tmp_path / "series", zip_folder(tmp_path / "series")):
        read = read_volume(source, name="scan")
        assert read.format == "DICOM series" and read.axis_codes == ("S", "P", "L")
        assert read.array_axis("axial") == 0 and read.description == "MR, T1 AX"
        assert read.spacing("axial") == pytest.approx((SLICE_MM, 1.0, 1.0))
        for k, image in enumerate(images):
            np.testing.assert_array_equal(read.slice_pixels("axial", k), shown(read, image))
    assert is_volume_path(tmp_path / "series")


def test_without_positions_a_series_follows_instance_numbers_as_stored(
    images: list[np.ndarray], tmp_path: Path
) -> None:
    write_series(tmp_path / "series", images, positions=False, seed=5)
    read = read_volume(tmp_path / "series")
    assert read.planes == (STORED,) and read.axis_codes is None
    assert any("sorted by InstanceNumber" in note for note in read.notes)
    for k, image in enumerate(images[::-1]):  # InstanceNumber counts from the head down
        np.testing.assert_array_equal(read.slice_pixels(STORED, k), shown(read, image))


def test_the_window_comes_from_the_whole_series_not_each_slice(
    images: list[np.ndarray], tmp_path: Path
) -> None:
    scales = [0.25] + [1.0] * (len(images) - 1)  # the first slice stored four times darker
    write_series(tmp_path / "series", images, scales=scales)
    read = read_volume(tmp_path / "series")
    dark, bright = read.slice_pixels("axial", 0), read.slice_pixels("axial", 1)
    assert bright.max() >= 250 and dark.max() < 100  # a per-slice window would give 255 both
    low, high = read.window
    everything = np.stack([stored_values(im) * s for im, s in zip(images, scales, strict=True)])
    assert (low, high) == pytest.approx(tuple(np.percentile(everything, (0.5, 99.5))), rel=1e-3)


def test_two_series_in_one_folder_are_listed_and_each_can_be_read(
    images: list[np.ndarray], tmp_path: Path
) -> None:
    first = write_series(tmp_path / "both", images[:4], seed=1)
    second = write_series(tmp_path / "both" / "other", images[4:], seed=2)
    with pytest.raises(SeveralSeriesError) as several:
        read_volume(tmp_path / "both", name="both")
    assert [summary.uid for summary in several.value.series] == [second, first]  # largest first
    assert first in str(several.value) and second in str(several.value)
    assert [summary.files for summary in list_series(tmp_path / "both")] == [5, 4]
    assert read_volume(tmp_path / "both", series=first).slice_count("axial") == 4
    chosen = read_volume(zip_folder(tmp_path / "both"), name="both.zip", series=second)
    assert chosen.slice_count("axial") == 5 and chosen.series_uid == second
    with pytest.raises(ImageReadError, match=r"no series 1\.2\.3"):
        read_volume(tmp_path / "both", series="1.2.3")


def test_a_series_of_mixed_sizes_is_refused(images: list[np.ndarray], tmp_path: Path) -> None:
    small = [image[:64, :64] for image in images[:3]]
    uid = write_series(tmp_path / "mixed", images[:3])
    write_series(tmp_path / "mixed" / "small", small, series_uid=uid, seed=4)
    with pytest.raises(ImageReadError, match=r"slices differ in size \(128x128 in 3 files, 64x64"):
        read_volume(tmp_path / "mixed")


def test_a_series_over_the_voxel_limit_is_refused_from_its_headers(
    images: list[np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_series(tmp_path / "series", images)
    side = images[0].shape[0]
    monkeypatch.setattr(volume, "MAX_VOLUME_VOXELS", SLICES * side * side - 1)

    def never(*_: object) -> np.ndarray:
        raise AssertionError("pixels were decoded before the limit was checked")

    monkeypatch.setattr(dicom_series, "decode_dicom_values", never)
    with pytest.raises(ImageReadError, match="voxels exceeds"):
        read_volume(tmp_path / "series")


def test_a_truncated_slice_or_foreign_files_fail_cleanly(
    images: list[np.ndarray], tmp_path: Path
) -> None:
    write_series(tmp_path / "series", images)
    victim = sorted((tmp_path / "series").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:-4000])
    with pytest.raises(ImageReadError) as refused:
        read_volume(tmp_path / "series", name="series")
    message = str(refused.value)
    assert message.startswith(f"series: {victim.name}: ") and "\n" not in message, message
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("not dicom")
    (tmp_path / "notes" / "b").write_bytes(b"\0" * 200)
    with pytest.raises(ImageReadError, match=r"no single-frame DICOM images \(2 not DICOM\)"):
        read_volume(tmp_path / "notes")
    assert not is_volume_path(tmp_path / "notes")


def test_a_real_series_from_pydicoms_test_data_follows_its_positions() -> None:
    """Five axial CT slices whose InstanceNumber runs head to feet (dicomdirtests)."""
    root = get_testdata_file("dicomdirtests")
    if root is None or not (Path(root) / "98892001" / "CT5N").is_dir():
        pytest.skip("pydicom's dicomdirtests data is not installed")
    folder = Path(root) / "98892001" / "CT5N"
    read = read_volume(folder)
    assert read.axis_codes == ("S", "P", "L") and read.slice_count("axial") == 5
    assert read.spacing("axial")[0] == pytest.approx(2.5)
    files = sorted(
        folder.iterdir(), key=lambda p: float(pydicom.dcmread(p).ImagePositionPatient[2])
    )
    instances = [int(pydicom.dcmread(path).InstanceNumber) for path in files]
    assert instances == sorted(instances, reverse=True)  # position and InstanceNumber disagree
    for k, path in enumerate(files):
        expected = window_to_uint8(decode_dicom_values(path.read_bytes(), path.name, 10**6),
                                   read.window)  # fmt: skip
        np.testing.assert_array_equal(read.slice_pixels("axial", k), expected)
    # A localizer: one series, slices of different orientations; no planes are made up.
    localizer = read_volume(Path(root) / "98892003" / "MR700")
    assert localizer.planes == (STORED,) and "different orientations" in localizer.notes[0]


# ---------------------------------------------------------------- what the page draws


def test_the_strip_gives_each_class_a_colour_and_a_dash_and_the_ranking_leads_with_tumours() -> (
    None
):
    classes = ("glioma", "meningioma", "notumor", "pituitary")
    probabilities = np.array([[0.1, 0.1, 0.7, 0.1], [0.6, 0.1, 0.2, 0.1], [0.2, 0.1, 0.1, 0.6]])
    figure = slice_probability_chart(probabilities, classes, current=2, plane="axial")
    assert [trace.name for trace in figure.data] == list(classes)
    assert len({trace.line.dash for trace in figure.data}) == 4
    assert len({trace.line.color for trace in figure.data}) == 4
    assert list(figure.data[0].x) == [1, 2, 3]
    table = most_tumour_like(probabilities, classes)
    assert list(table["slice"]) == [3, 2, 1]
    assert table[TUMOUR_SCORE].tolist() == pytest.approx([0.9, 0.8, 0.3])
    assert most_tumour_like(probabilities, ("a", "b", "c", "d")) is None


# ---------------------------------------------------------------- predict and the Classify page


@pytest.fixture(scope="module")
def run_id(demo_dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A one-epoch model of the demo data, the only run in this module's checkpoints (which
    the CLI and the page see while the module's tests run)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(paths.CHECKPOINTS_ENV, str(tmp_path_factory.mktemp("volume-checkpoints")))
        yield fit(tiny_request(demo_dataset_dir, epochs=1, subset_per_class=10)).run_id


IMAGE_KEYS = {"file", "frame", "predicted", "probabilities", "cam_path", "error", "warnings",
              "training_copy"}  # fmt: skip


def test_predict_gives_one_result_per_slice_along_the_chosen_axis(
    run_id: str, images: list[np.ndarray], tmp_path: Path, demo_dataset_dir: Path
) -> None:
    scan = tmp_path / "scan.nii.gz"
    small = [image[::4, ::4] for image in images]  # 32 sagittal slices, not 128: a quick test
    scan.write_bytes(nifti_bytes(small))
    png = sorted((demo_dataset_dir / "Testing" / "glioma").glob("*.png"))[0]
    result = run_cli("predict", run_id, str(scan), str(png), "--json")
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    assert [(e["slice"], e["axis"]) for e in entries[:-1]] == [(n, "axial") for n in range(1, 10)]
    assert all(set(entry) == IMAGE_KEYS | {"slice", "axis"} for entry in entries)
    assert all(entry["file"] == str(scan) and entry["error"] is None for entry in entries[:-1])
    assert all(abs(sum(e["probabilities"].values()) - 1) < 1e-5 for e in entries)
    assert entries[-1]["file"] == str(png) and entries[-1]["slice"] is None  # an image, as ever
    sagittal = run_cli("predict", run_id, str(scan), "--axis", "sagittal",
                       "--cam-out", str(tmp_path / "cams"))  # fmt: skip
    assert sagittal.returncode == 0, sagittal.stderr
    lines = [line for line in sagittal.stdout.splitlines() if "|" in line]
    assert len(lines) == 32 and lines[0].startswith(f"{scan} [sagittal 1/32]: ")
    cams = sorted(path.name for path in (tmp_path / "cams").iterdir())
    assert cams[0] == "scan_sagittal001_hirescam.png" and len(cams) == 32


def test_predict_on_several_series_names_them_and_reads_the_one_chosen(
    run_id: str, images: list[np.ndarray], tmp_path: Path
) -> None:
    first = write_series(tmp_path / "both", images[:4], seed=1)
    second = write_series(tmp_path / "both" / "other", images[4:], seed=2)
    refused = run_cli("predict", run_id, str(tmp_path / "both"), "--json")
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: {tmp_path / 'both'}: 2 DICOM series; choose one with --series")
    assert first in line and second in line
    chosen = run_cli("predict", run_id, str(tmp_path / "both"), "--series", first, "--json")
    assert chosen.returncode == 0, chosen.stderr
    assert [entry["slice"] for entry in json.loads(chosen.stdout)] == [1, 2, 3, 4]
    broken = tmp_path / "bold.nii"
    broken.write_bytes(nib.Nifti1Image(np.zeros((4, 4, 4, 2), np.float32), np.eye(4)).to_bytes())
    four = run_cli("predict", run_id, str(broken))
    assert four.returncode == 2 and "holds 2 volumes" in four.stderr
    assert len(four.stderr.strip().splitlines()) == 1 and "Traceback" not in four.stderr


def test_the_classify_page_browses_a_volume_and_classifies_every_slice(
    app: AppTest, run_id: str, images: list[np.ndarray], tmp_path: Path
) -> None:
    write_series(tmp_path / "a", images[:4], seed=1)
    second = write_series(tmp_path / "a" / "b", images[4:], seed=2)
    four_d = nib.Nifti1Image(np.zeros((4, 4, 4, 2), np.float32), np.eye(4)).to_bytes()
    app.run()
    app.switch_page("app_pages/classify.py").run()
    upload(app, [("scan.nii.gz", nifti_bytes(images), "application/gzip"),
                 ("series.zip", zip_folder(tmp_path / "a"), "application/zip"),
                 ("bold.nii", four_d, "application/octet-stream")])  # fmt: skip
    assert not app.exception, app.exception
    assert list(app.dataframe[0].value["file"]) == ["bold.nii"]  # refused, in the problems
    assert "holds 2 volumes" in app.dataframe[0].value["problem"][0]
    assert [header.value for header in app.subheader][:2] == ["scan.nii.gz", "series.zip"]
    key = "classify_volume_scan.nii.gz"
    assert app.radio(key=f"{key}_plane").value == "axial"
    assert app.slider(key=f"{key}_axial_slice").value == 5  # the middle of nine
    # The zip holds two series: the larger is offered first, the other can be chosen.
    series = app.selectbox(key="classify_volume_series.zip_series")
    assert series.value == second and len(series.options) == 2
    assert "scan.nii.gz [axial 5/9]" in app.selectbox(key="classify_image").options

    def strips() -> list[str]:
        charts = [str(chart.proto) for chart in app.get("plotly_chart")]
        return [plane for plane in ("axial", "coronal") for c in charts if f"the {plane} sl" in c]

    assert strips() == []  # nothing is classified slice by slice before the button is pressed
    app.button(key=f"{key}_classify_all").click().run()
    assert not app.exception, app.exception
    assert strips() == ["axial"]
    ranked = next(frame.value for frame in app.dataframe if "slice" in frame.value.columns)
    assert sorted(ranked["slice"]) == list(range(1, 10))
    assert ranked[TUMOUR_SCORE].is_monotonic_decreasing
    top = int(ranked["slice"].iloc[0])
    app.button(key=f"{key}_axial_slice_open_{top}").click().run()
    assert not app.exception, app.exception
    assert app.slider(key=f"{key}_axial_slice").value == top
    assert app.selectbox(key="classify_image").value == "scan.nii.gz"  # its CAM is shown
    captions = [element.proto.imgs[0].caption for element in app.get("image")]
    assert f"scan.nii.gz [axial {top}/9]" in captions
    assert overlay_caption(app).startswith("HiResCAM:")

    app.radio(key=f"{key}_plane").set_value("coronal").run()
    assert not app.exception, app.exception
    assert app.slider(key=f"{key}_coronal_slice").value == 64  # the middle of 128
    assert strips() == ["coronal"]  # classified again along the new plane
