"""Upload fuzzing: a few hundred generated malformed and odd images through the reader and Classify.

Every case must end in valid slices or one `ImageReadError` whose message is a single line
naming the file, within a time budget: never another exception, never a hang. The cases are
seeded, so a failure names a case that can be rebuilt. docs/reliability.md lists the counts.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import struct
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.pixels import get_decoder

from core import paths
from core.imaging.pixels import ImageReadError
from core.imaging.reader import SUPPORTED_EXTENSIONS, read_slices
from core.inference.predictor import Predictor
from core.training.fit import fit
from tests.test_cli import run_cli
from tests.test_imaging import _bomb_png, _mr_small, multiframe_dicom
from tests.test_training import tiny_request

SEED = 20261127
CASE_BUDGET_SECONDS = 5.0  # one decode; the slowest valid case (36 Mpx PNG) takes ~0.3 s
ALARM_SECONDS = 20  # a hang is interrupted here, so the test fails instead of stalling CI

# What each case must end in: decoded slices, an ImageReadError, or either (mutated data,
# where whether a decoder still accepts the damage depends on where the damage fell).
VALID, ERROR, EITHER = "valid", "error", "either"


@dataclass(frozen=True)
class Case:
    """One generated upload and what it must end in."""

    category: str
    name: str
    data: bytes
    expect: str
    reason: str = ""  # a phrase the error must contain, when the outcome is known

    @property
    def label(self) -> str:
        return f"{self.name} ({self.category})"


# ---------------------------------------------------------------- builders of good images


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def phantom(rng: np.random.Generator, height: int = 48, width: int = 56) -> np.ndarray:
    """A gray 'slice': a bright disc on noise, so decoders see structure and texture."""
    rows, columns = np.mgrid[0:height, 0:width]
    disc = (rows - height / 2) ** 2 + (columns - width / 2) ** 2 < (min(height, width) / 3) ** 2
    noise = rng.integers(0, 60, (height, width))
    return np.clip(noise + disc * 150, 0, 255).astype(np.uint8)


def dicom_bytes(dataset: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def pydicom_sample(name: str) -> bytes:
    path = get_testdata_file(name, download=False)  # never the network
    assert path is not None, f"pydicom test file {name} missing"
    return Path(path).read_bytes()


def decodable(data: bytes) -> bool:
    """Whether this environment has a pixel decoder for the DICOM file's transfer syntax."""
    syntax = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).file_meta
    return get_decoder(syntax.TransferSyntaxUID).is_available


def png_of_zeros(width: int, height: int) -> bytes:
    """A real, fully decodable gray PNG of zeros: tiny on disk, any canvas size."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0, then the row
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int, base: bytes) -> bytes:
    """A JPEG whose SOF0 frame header claims width x height (only the size lies)."""
    start = base.index(b"\xff\xc0")
    data = bytearray(base)
    data[start + 5 : start + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def bmp_claiming(width: int, height: int, base: bytes) -> bytes:
    data = bytearray(base)
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def tiff_claiming(width: int, height: int, base: bytes) -> bytes:
    """A little-endian TIFF whose ImageWidth/ImageLength tags claim width x height."""
    data = bytearray(base)
    (offset,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, offset)
    for entry in range(count):
        at = offset + 2 + 12 * entry
        tag, _kind = struct.unpack_from("<HH", data, at)
        if tag in (256, 257):
            value = width if tag == 256 else height
            data[at + 2 : at + 12] = struct.pack("<HII", 4, 1, value)  # LONG, one value
    return bytes(data)


# ---------------------------------------------------------------- the cases


def valid_but_odd(rng: np.random.Generator) -> list[Case]:
    gray = phantom(rng)
    rgb = np.stack([gray, gray[::-1], np.full_like(gray, 90)], axis=-1)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the reader turns it upright
    palette = Image.fromarray(gray).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    sixteen = Image.fromarray((gray.astype(np.uint16) * 257).astype(np.uint16))
    floats = Image.fromarray(gray.astype(np.float32) / 7.0)
    pages = [Image.fromarray(np.roll(gray, shift, axis=1)) for shift in (0, 8, 16)]
    inverted = _mr_small()
    inverted.PhotometricInterpretation = "MONOCHROME1"
    odd = [
        ("png-16bit.png", encode(sixteen, "PNG")),
        ("png-rgba.png", encode(Image.fromarray(np.dstack([rgb, gray])), "PNG")),
        ("png-gray-alpha.png", encode(Image.fromarray(np.dstack([gray, gray])), "PNG")),
        ("png-palette-transparent.png", encode(palette, "PNG", transparency=0)),
        ("png-1bit.png", encode(Image.fromarray(gray > 100), "PNG")),
        ("png-1x1.png", encode(Image.fromarray(gray[:1, :1]), "PNG")),
        (
            "png-1x4000-strip.png",
            encode(Image.fromarray(np.tile(gray[:1], (1, 72))[:, :4000]), "PNG"),
        ),
        (
            "png-4000x1-strip.png",
            encode(Image.fromarray(np.tile(gray[:, :1], (84, 1))[:4000]), "PNG"),
        ),
        ("png-named.jpg", encode(Image.fromarray(gray), "PNG")),
        ("apng-2-frames.png", encode(pages[0], "PNG", save_all=True, append_images=pages[1:2])),
        ("png-6000x6000-zeros.png", png_of_zeros(6000, 6000)),  # 36 Mpx: under the limit
        ("jpeg-cmyk.jpg", encode(Image.fromarray(rgb).convert("CMYK"), "JPEG")),
        ("jpeg-progressive.jpg", encode(Image.fromarray(rgb), "JPEG", progressive=True)),
        ("jpeg-gray.jpg", encode(Image.fromarray(gray), "JPEG")),
        ("jpeg-exif-rotated.jpg", encode(Image.fromarray(rgb), "JPEG", exif=exif)),
        ("jpeg-1x1.jpg", encode(Image.fromarray(rgb[:1, :1]), "JPEG")),
        ("jpeg-named.dcm", encode(Image.fromarray(gray), "JPEG")),
        ("bmp-palette.bmp", encode(palette, "BMP")),
        ("bmp-1x1.bmp", encode(Image.fromarray(gray[:1, :1]), "BMP")),
        ("tiff-16bit.tif", encode(sixteen, "TIFF")),
        ("tiff-float.tif", encode(floats, "TIFF")),
        ("tiff-lzw.tif", encode(Image.fromarray(rgb), "TIFF", compression="tiff_lzw")),
        ("tiff-3-pages.tif", encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])),
        ("dicom-mr.dcm", pydicom_sample("MR_small.dcm")),
        ("dicom-ct.dcm", pydicom_sample("CT_small.dcm")),
        ("dicom-rle.dcm", pydicom_sample("MR_small_RLE.dcm")),
        ("dicom-monochrome1.dcm", dicom_bytes(inverted)),
        ("dicom-3-frames.dcm", multiframe_dicom(3)),
    ]
    cases = [Case("valid but odd", name, data, VALID) for name, data in odd]
    # Compressed DICOM: valid where a decoder plugin is installed, else a named clear error.
    for name, file in (
        ("dicom-jpeg-lossless-rgb.dcm", "SC_rgb_jpeg_gdcm.dcm"),
        ("dicom-jpeg-ls.dcm", "MR_small_jpeg_ls_lossless.dcm"),
        ("dicom-jpeg2000.dcm", "MR_small_jp2klossless.dcm"),
    ):
        data = pydicom_sample(file)
        if decodable(data):
            cases.append(Case("valid but odd", name, data, VALID))
        else:
            cases.append(Case("DICOM problems", name, data, ERROR, "needs a decoder plugin"))
    return cases


def dicom_problems() -> list[Case]:
    def variant(**changes: object) -> bytes:
        dataset = _mr_small()
        for keyword, value in changes.items():
            setattr(dataset, keyword, value)
        return dicom_bytes(dataset)

    no_pixels = _mr_small()
    del no_pixels.PixelData
    mpeg2 = _mr_small()
    mpeg2.PixelData = encapsulate([mpeg2.PixelData])
    mpeg2["PixelData"].VR = "OB"
    mpeg2["PixelData"].is_undefined_length = True
    mpeg2.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: no decoder exists
    no_geometry = _mr_small()
    del no_geometry.Rows
    mr = pydicom_sample("MR_small.dcm")
    return [
        Case("DICOM problems", "dicom-no-pixel-data.dcm", dicom_bytes(no_pixels), ERROR,
             "no pixel data"),
        Case("DICOM problems", "dicom-mpeg2.dcm", dicom_bytes(mpeg2), ERROR, "not supported"),
        Case("DICOM problems", "dicom-no-rows.dcm", dicom_bytes(no_geometry), ERROR,
             "no pixel data"),
        Case("DICOM problems", "dicom-zero-rows.dcm", variant(Rows=0), ERROR, "no pixels"),
        Case("DICOM problems", "dicom-5-frames-1-stored.dcm", variant(NumberOfFrames=5), ERROR),
        Case("DICOM problems", "dicom-header-only.dcm", mr[:132] + mr[132:400], ERROR),
        Case("DICOM problems", "dicom-preamble-only.dcm", mr[:132], ERROR),
    ]  # fmt: skip


def bombs(rng: np.random.Generator) -> list[Case]:
    gray = phantom(rng, 8, 8)
    huge_frames = _mr_small()
    huge_frames.NumberOfFrames = 100_000  # 64x64 each: 409 Mpx in all, from a 9 kB file
    huge_slice = _mr_small()
    huge_slice.Rows, huge_slice.Columns = 65_535, 65_535
    small = {fmt: encode(Image.fromarray(gray), fmt) for fmt in ("JPEG", "BMP", "TIFF")}
    made = [
        ("png-claims-100000x100000.png", _bomb_png(100_000, 100_000)),
        ("png-claims-40000x40000.png", _bomb_png(40_000, 40_000)),
        ("png-8000x8000-zeros.png", png_of_zeros(8000, 8000)),  # real, 64 Mpx, ~70 kB
        ("jpeg-claims-65500x65500.jpg", jpeg_claiming(65_500, 65_500, small["JPEG"])),
        ("bmp-claims-100000x100000.bmp", bmp_claiming(100_000, 100_000, small["BMP"])),
        ("tiff-claims-100000x100000.tif", tiff_claiming(100_000, 100_000, small["TIFF"])),
        ("dicom-claims-65535x65535.dcm", dicom_bytes(huge_slice)),
        ("dicom-claims-100000-frames.dcm", dicom_bytes(huge_frames)),
    ]  # fmt: skip
    return [Case("huge dimensions", name, data, ERROR) for name, data in made]


def not_images(rng: np.random.Generator) -> list[Case]:
    gray = Image.fromarray(phantom(rng))
    frames = [gray, gray.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    made = [
        ("notes.png", b"These are my notes about the scan, not a picture.\n"),
        ("report.jpg", "Befund: unauffällig\n".encode("utf-16")),
        ("page.png", b"<!DOCTYPE html><html><body><img src='x.png'></body></html>"),
        ("drawing.png", b"<svg xmlns='http://www.w3.org/2000/svg' width='9' height='9'/>"),
        ("scan.jpg", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n"),
        ("archive.dcm", b"PK\x03\x04" + bytes(rng.integers(0, 256, 300, dtype=np.uint8))),
        ("data.png", b'{"pixels": [[0, 1], [1, 0]]}'),
        ("program.bmp", b"\x7fELF\x02\x01\x01" + bytes(60)),
        ("still.gif", encode(gray, "GIF")),
        ("animated.gif", encode(gray, "GIF", save_all=True, append_images=frames[1:])),
        ("photo.webp", encode(gray, "WEBP")),
        ("icon.png", encode(gray, "ICO")),
    ]
    return [Case("not an image", name, data, ERROR, "not an image") for name, data in made]


def zero_size() -> list[Case]:
    return [
        Case("zero-size", name, b"", ERROR, "empty file")
        for name in ("empty.jpg", "empty.png", "empty.dcm", "empty.tif")
    ]


def random_bytes(rng: np.random.Generator, count: int) -> list[Case]:
    return [
        Case(
            "random bytes",
            f"random-{index}.png",
            rng.integers(0, 256, int(rng.integers(1, 4096)), dtype=np.uint8).tobytes(),
            ERROR,
            "not an image",
        )
        for index in range(count)
    ]


def magic_then_garbage(rng: np.random.Generator, per_magic: int) -> list[Case]:
    magics = {
        "jpeg": b"\xff\xd8\xff",
        "png": b"\x89PNG\r\n\x1a\n",
        "bmp": b"BM",
        "tiff-le": b"II*\x00",
        "tiff-be": b"MM\x00*",
        "bigtiff": b"II+\x00",
        "dicom": bytes(128) + b"DICM",
    }
    cases = []
    for kind, magic in magics.items():
        for index in range(per_magic):
            garbage = rng.integers(0, 256, int(rng.integers(0, 2000)), dtype=np.uint8).tobytes()
            cases.append(Case("right magic, garbage after", f"{kind}-garbage-{index}.jpg",
                              magic + garbage, ERROR))  # fmt: skip
    return cases


def truncated(
    rng: np.random.Generator, samples: dict[str, bytes], counts: dict[str, int]
) -> list[Case]:
    cases = []
    for kind, data in samples.items():
        for index in range(counts[kind]):
            cut = int(rng.integers(1, len(data)))
            cases.append(Case("truncated", f"{kind}-cut-{cut}-{index}.{kind}", data[:cut], EITHER))
    return cases


def flipped(
    rng: np.random.Generator, samples: dict[str, bytes], counts: dict[str, int]
) -> list[Case]:
    """A few bytes changed, mostly in the first 300 bytes, where sizes and tables live."""
    cases = []
    for kind, data in samples.items():
        for index in range(counts[kind]):
            mutated = bytearray(data)
            reach = min(len(data), 300) if index % 2 == 0 else len(data)
            for position in rng.integers(0, reach, int(rng.integers(1, 6))):
                mutated[position] = int(rng.integers(0, 256))
            cases.append(
                Case("bytes flipped", f"{kind}-flip-{index}.{kind}", bytes(mutated), EITHER)
            )
    return cases


def build_cases() -> list[Case]:
    rng = np.random.default_rng(SEED)
    slice_ = phantom(rng, 96, 112)
    samples = {
        "jpg": encode(Image.fromarray(slice_), "JPEG", quality=90),
        "png": encode(Image.fromarray(slice_), "PNG"),
        "bmp": encode(Image.fromarray(slice_), "BMP"),
        "tif": encode(Image.fromarray(slice_), "TIFF"),
        "dcm": pydicom_sample("MR_small.dcm"),
    }
    cases = [
        *valid_but_odd(rng),
        *dicom_problems(),
        *bombs(rng),
        *not_images(rng),
        *zero_size(),
        *random_bytes(rng, 50),
        *magic_then_garbage(rng, 5),
        *truncated(rng, samples, {"jpg": 32, "png": 31, "bmp": 10, "tif": 10, "dcm": 20}),
        *flipped(rng, samples, {"jpg": 15, "png": 15, "bmp": 5, "tif": 5, "dcm": 10}),
    ]
    names = [case.name for case in cases]
    assert len(set(names)) == len(names), "case names must be unique (they key the uploads)"
    return cases


CASES = build_cases()


# ---------------------------------------------------------------- running one case


@contextlib.contextmanager
def time_budget(label: str, seconds: float = CASE_BUDGET_SECONDS) -> Iterator[None]:
    """Fail when the block takes over `seconds`; interrupt it outright if it hangs."""

    def interrupt(signum: int, frame: object) -> None:
        raise TimeoutError(f"{label}: still running after {ALARM_SECONDS} s (a hang)")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(ALARM_SECONDS)
    started = time.perf_counter()
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    elapsed = time.perf_counter() - started
    assert elapsed < seconds, f"{label}: took {elapsed:.1f} s, over the {seconds} s budget"


def outcome_of(case: Case, source: bytes | Path) -> tuple[str, list[tuple[str, np.ndarray]]]:
    """'valid' with the slices, or 'error' (after checking the error is a clean one)."""
    with time_budget(case.label):
        try:
            slices = read_slices(source, name=case.name)
        except ImageReadError as error:
            message = str(error)
            assert "\n" not in message and message.startswith(f"{case.name}: "), message
            assert len(error.reason) <= 240 and error.reason, message
            assert case.reason in error.reason, f"{case.label}: {message}"
            return ERROR, []
    assert slices, case.label
    for name, pixels in slices:
        assert name.startswith(case.name), (case.label, name)
        assert pixels.dtype == np.uint8 and pixels.ndim in (2, 3), (case.label, pixels.shape)
        assert pixels.shape[0] >= 1 and pixels.shape[1] >= 1, case.label
        if pixels.ndim == 3:
            assert pixels.shape[2] == 3, (case.label, pixels.shape)
    return VALID, slices


def check_expected(case: Case, outcome: str) -> None:
    assert case.expect in (outcome, EITHER), f"{case.label}: expected {case.expect}, got {outcome}"


# ---------------------------------------------------------------- tests


def test_the_cases_cover_every_category_the_issue_names() -> None:
    counts = Counter(case.category for case in CASES)
    assert len(CASES) >= 300
    assert counts["truncated"] >= 100 and counts["random bytes"] >= 50
    assert counts["huge dimensions"] >= 8 and counts["zero-size"] >= 4
    assert counts["right magic, garbage after"] >= 35 and counts["bytes flipped"] >= 50
    assert counts["valid but odd"] >= 25 and counts["not an image"] >= 12


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow and pydicom warn on odd headers
def test_every_case_reads_or_fails_cleanly_from_bytes_and_from_a_file(tmp_path: Path) -> None:
    outcomes: Counter[tuple[str, str]] = Counter()
    for index, case in enumerate(CASES):
        from_bytes, slices = outcome_of(case, case.data)
        check_expected(case, from_bytes)
        path = tmp_path / f"{index:03d}"
        path.mkdir()
        (path / case.name).write_bytes(case.data)
        from_file, file_slices = outcome_of(case, path / case.name)
        assert from_file == from_bytes, case.label  # the same bytes, the same verdict
        assert [name for name, _ in file_slices] == [name for name, _ in slices], case.label
        for (_, one), (_, other) in zip(slices, file_slices, strict=True):
            assert np.array_equal(one, other), case.label
        outcomes[case.category, from_bytes] += 1
    print("\nupload fuzz outcomes (category, outcome): count")
    for (category, outcome), count in sorted(outcomes.items()):
        print(f"  {category:28} {outcome:6} {count}")
    # The valid-but-odd files all decode, and none of the known-bad ones sneaks through.
    assert outcomes["valid but odd", ERROR] == 0
    for category in ("huge dimensions", "not an image", "zero-size", "random bytes"):
        assert outcomes[category, VALID] == 0, category


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_paths_that_are_not_files_fail_cleanly_and_never_block(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # opening a FIFO for reading would block until a writer comes
    folder = tmp_path / "folder.png"
    folder.mkdir()
    for path, reason in (
        (fifo, "not a regular file"),
        (folder, "not a regular file"),
        (tmp_path / "missing.png", "file not found"),
        (Path("/dev/zero"), "not a regular file"),
    ):
        case = Case("paths", path.name, b"", ERROR, reason)
        assert outcome_of(case, path)[0] == ERROR


@pytest.fixture(scope="module")
def predictor(demo_dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    """A one-epoch model of the demo data, the only run in this module's checkpoints folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(paths.CHECKPOINTS_ENV, str(tmp_path_factory.mktemp("fuzz-checkpoints")))
        run_id = fit(tiny_request(demo_dataset_dir, epochs=1, subset_per_class=10)).run_id
        yield Predictor.from_run(run_id)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_classify_page_takes_every_case_in_one_upload(
    predictor: Predictor, demo_dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    from core.ui.memo import shared_memo
    from tests.test_pages import PROJECT_ROOT, TIMEOUT

    monkeypatch.setenv(paths.DATA_DIR_ENV, str(demo_dataset_dir))
    shared_memo.clear()
    # The uploader refuses other extensions outright (as the browser does), so a GIF or WebP
    # comes in under an allowed name: content, not the name, decides how it is read.
    uploads = {
        case.name
        if Path(case.name).suffix in SUPPORTED_EXTENSIONS
        else f"{case.name}.png": case.data
        for case in CASES
    }
    # A file that repeats an earlier one byte for byte is classified once (and named so).
    first_with: dict[bytes, str] = {}
    repeats = [name for name, data in uploads.items() if first_with.setdefault(data, name) != name]
    expected_slices = {}
    for name, data in uploads.items():
        if name in repeats:
            continue
        with contextlib.suppress(ImageReadError):
            expected_slices[name] = [label for label, _ in read_slices(data, name=name)]
    app = AppTest.from_file(str(PROJECT_ROOT / "Home.py"), default_timeout=TIMEOUT).run()
    app.switch_page("app_pages/classify.py").run()
    files = [(name, data, "application/octet-stream") for name, data in uploads.items()]
    with time_budget("the Classify page with every case at once", 120):
        app.get("file_uploader")[0].set_value(files).run()
    assert not app.exception
    problems = app.dataframe[0].value
    unreadable = [name for name in uploads if name not in expected_slices and name not in repeats]
    assert list(problems["file"]) == unreadable
    assert repeats and any(f"{len(repeats)} upload(s) repeat" in info.value for info in app.info)
    assert len(problems) >= 150
    assert problems["problem"].map(lambda text: bool(text) and "\n" not in text).all()
    assert any(f"{len(problems)} file(s) could not be read" in error.value for error in app.error)
    results = app.dataframe[1].value
    assert list(results["file"]) == [
        label for labels in expected_slices.values() for label in labels
    ]
    probabilities = results[list(predictor.classes)].sum(axis=1)
    assert probabilities.round(4).eq(1).all() and len(results) >= 50
    assert {metric.label for metric in app.metric} == {"Predicted class"}


def test_cli_predict_reports_each_hostile_file_in_one_line(
    predictor: Predictor, demo_dataset_dir: Path, tmp_path: Path
) -> None:
    """What tests/test_inference.py does not cover yet: bombs, DICOM faults, pipes, garbage."""
    from core.runs.registry import load_run

    chosen = {case.name: case for case in CASES}
    bad_names = [
        "png-claims-100000x100000.png",
        "dicom-claims-100000-frames.dcm",
        "dicom-no-pixel-data.dcm",
        "dicom-mpeg2.dcm",
        "animated.gif",
        "random-0.png",
        "jpeg-garbage-0.jpg",
    ]
    files = []
    for name in bad_names:
        (tmp_path / name).write_bytes(chosen[name].data)
        files.append(tmp_path / name)
    os.mkfifo(tmp_path / "pipe.png")
    files += [tmp_path / "pipe.png", tmp_path / "missing.png"]
    good = sorted((demo_dataset_dir / "Testing" / "glioma").glob("*.png"))[0]
    run_dir = load_run(predictor.run_id).path
    with time_budget("predict on hostile files", 120):
        result = run_cli("predict", str(run_dir), str(good), *map(str, files), "--json")
    assert result.returncode == 2, result.stderr
    entries = json.loads(result.stdout)
    assert [entry["file"] for entry in entries] == [str(good), *map(str, files)]
    assert entries[0]["error"] is None and entries[0]["predicted"] in predictor.classes
    assert all(entry["error"] and entry["predicted"] is None for entry in entries[1:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == len(files) and "Traceback" not in result.stderr
    for line, file in zip(lines, files, strict=True):
        assert line.startswith(f"error: {file}: "), line


def test_a_strip_image_is_shrunk_for_display_and_keeps_one_row() -> None:
    from core.ui.images import STREAMLIT_MAX_IMAGE_WIDTH, displayable

    strip = np.full((1, 4000, 3), 200, dtype=np.uint8)  # Streamlit would make it 0 rows high
    shown = displayable(strip)
    assert shown.shape == (1, STREAMLIT_MAX_IMAGE_WIDTH, 3) and shown.dtype == np.uint8
    assert (shown == 200).all()
    slice_ = np.zeros((512, 512), dtype=np.uint8)
    assert displayable(slice_) is slice_  # the usual scan is shown untouched
    assert displayable(np.zeros((3000, 2920), dtype=np.uint8)).shape == (1500, 1460)
