"""Tests for core.imaging: the project's single safe image reader."""

from __future__ import annotations

import io
import pickle
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageFile
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.pixels import get_decoder

from core.imaging.pixels import DecodedImage, ImageReadError, rescale_to_uint8, to_grayscale
from core.imaging.reader import (
    MAX_FILE_BYTES,
    MAX_PIXELS,
    SUPPORTED_EXTENSIONS,
    read_frames,
    read_image,
    read_slices,
)

RNG_SEED = 1234


# ---------------------------------------------------------------- sample builders


def _encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def _gradient(height: int = 48, width: int = 64) -> np.ndarray:
    ramp = np.linspace(0, 255, width, dtype=np.float64)
    return np.tile(ramp, (height, 1)).astype(np.uint8)


def _rgb(height: int = 48, width: int = 64) -> np.ndarray:
    g = _gradient(height, width)
    return np.stack([g, g[::-1], np.full_like(g, 90)], axis=-1)


def _jpeg(arr: np.ndarray, **params: object) -> bytes:
    return _encode(Image.fromarray(arr), "JPEG", quality=95, **params)


def _png(arr: np.ndarray) -> bytes:
    return _encode(Image.fromarray(arr), "PNG")


def _write(tmp_path: Path, filename: str, data: bytes) -> Path:
    path = tmp_path / filename
    path.write_bytes(data)
    return path


def _dicom_file(name: str) -> str:
    path = get_testdata_file(name, download=False)  # never touch the network
    if path is None:
        pytest.skip(f"pydicom test file {name} not installed")
    return str(path)


def _mr_small() -> pydicom.Dataset:
    return pydicom.dcmread(_dicom_file("MR_small.dcm"))


def multiframe_dicom(frames: int = 3) -> bytes:
    """MR_small as a stack: frame i is the slice shifted right by 8*i pixels (each one differs)."""
    ds = _mr_small()
    pixels = ds.pixel_array
    stack = np.stack([np.roll(pixels, 8 * index, axis=1) for index in range(frames)])
    ds.NumberOfFrames = frames
    ds.PixelData = stack.astype(pixels.dtype).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_multiframe_dicom_is_read_as_named_slices() -> None:
    slices = read_slices(multiframe_dicom(3), name="stack.dcm")
    assert [name for name, _ in slices] == ["stack.dcm [1/3]", "stack.dcm [2/3]", "stack.dcm [3/3]"]
    assert not np.array_equal(slices[0][1], slices[1][1])
    assert all(pixels.shape == (64, 64) and pixels.dtype == np.uint8 for _, pixels in slices)
    (single,) = read_slices(Path(_dicom_file("MR_small.dcm")).read_bytes(), name="mr.dcm")
    assert single[0] == "mr.dcm"


def _save_dicom(ds: pydicom.Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


# ---------------------------------------------------------------- constants and errors


def test_constants() -> None:
    assert MAX_FILE_BYTES == 50 * 1024 * 1024
    assert MAX_PIXELS == 40_000_000
    assert {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".dcm", ".dicom"} == set(
        SUPPORTED_EXTENSIONS
    )
    assert all(ext == ext.lower() and ext.startswith(".") for ext in SUPPORTED_EXTENSIONS)


def test_error_is_one_line_starting_with_name() -> None:
    err = ImageReadError("scan.png", "broken\nacross\r\nlines")
    assert str(err) == "scan.png: broken across lines"
    assert (err.name, err.reason) == ("scan.png", "broken across lines")
    assert isinstance(err, ValueError)
    clone = pickle.loads(pickle.dumps(err))
    assert str(clone) == str(err) and clone.name == "scan.png"


def test_error_from_reader_names_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "garbage.png", b"hello, this is text\n" * 5)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    message = str(info.value)
    assert message.startswith("garbage.png: ")
    assert "\n" not in message and "Traceback" not in message
    assert info.value.name == "garbage.png"


# ---------------------------------------------------------------- source handling


def test_empty_file_and_empty_bytes(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match=r"^empty\.jpg: empty file$"):
        read_image(_write(tmp_path, "empty.jpg", b""))
    with pytest.raises(ImageReadError, match=r"^upload: empty file$"):
        read_image(b"")


def test_over_max_bytes_states_size_and_limit(tmp_path: Path) -> None:
    path = _write(tmp_path, "big.png", _png(_gradient()))
    size = path.stat().st_size
    with pytest.raises(ImageReadError, match="over the 100-byte limit") as info:
        read_image(path, max_bytes=100)
    assert f"{size:,} bytes" in str(info.value)
    with pytest.raises(ImageReadError, match=r"^upload: .*100-byte limit"):
        read_image(path.read_bytes(), max_bytes=100)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match=r"^nope\.png: file not found$"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="not a regular file"):
        read_image(tmp_path)


def test_bytes_source_and_name_override(tmp_path: Path) -> None:
    data = _png(_gradient())
    assert read_image(data).pixels.shape == (48, 64)
    assert read_image(bytearray(data)).format == "PNG"
    with pytest.raises(ImageReadError, match=r"^mine\.png: "):
        read_image(b"not an image at all", name="mine.png")
    path = _write(tmp_path, "x.png", b"nope")
    with pytest.raises(ImageReadError, match=r"^shown-name: "):
        read_image(str(path), name="shown-name")


def test_text_named_png_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, "notes.png", b"patient notes, definitely not pixels\n")
    with pytest.raises(ImageReadError, match=r"not an image \(unrecognised content"):
        read_image(path)
    with pytest.raises(ImageReadError, match="not an image"):
        read_image(_write(tmp_path, "notes.dcm", b"x" * 300))


def test_png_named_jpg_still_reads(tmp_path: Path) -> None:
    decoded = read_image(_write(tmp_path, "actually_png.jpg", _png(_gradient())))
    assert decoded.format == "PNG"
    assert np.array_equal(decoded.pixels, _gradient())


# ---------------------------------------------------------------- Pillow formats


def test_grayscale_jpeg(tmp_path: Path) -> None:
    decoded = read_image(_write(tmp_path, "g.jpg", _jpeg(_gradient())))
    assert isinstance(decoded, DecodedImage)
    assert (decoded.format, decoded.mode, decoded.channels, decoded.bit_depth) == (
        "JPEG",
        "L",
        1,
        8,
    )
    assert decoded.pixels.shape == (48, 64) and decoded.pixels.dtype == np.uint8
    assert (decoded.width, decoded.height, decoded.frames) == (64, 48, 1)
    assert np.abs(decoded.pixels.astype(int) - _gradient()).max() < 12


def test_rgb_jpeg_is_contiguous_writable(tmp_path: Path) -> None:
    decoded = read_image(_write(tmp_path, "c.jpeg", _jpeg(_rgb())))
    pixels = decoded.pixels
    assert decoded.mode == "RGB" and decoded.channels == 3
    assert pixels.shape == (48, 64, 3) and pixels.dtype == np.uint8
    assert pixels.flags.c_contiguous and pixels.flags.writeable


def test_identical_channel_rgb_stays_three_channels() -> None:
    g = _gradient()
    decoded = read_image(_png(np.stack([g, g, g], axis=-1)))
    assert decoded.pixels.shape == (48, 64, 3)
    assert np.array_equal(to_grayscale(decoded.pixels), g)


def test_jpeg_exif_orientation_applied() -> None:
    arr = np.zeros((10, 20), dtype=np.uint8)
    arr[:, :5] = 255  # bright strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    decoded = read_image(_jpeg(arr, exif=exif.tobytes()))
    assert decoded.pixels.shape == (20, 10)
    assert (decoded.width, decoded.height) == (10, 20)
    assert decoded.pixels[:5].mean() > 200 > decoded.pixels[-5:].mean() + 150


def test_png_8bit_gray(tmp_path: Path) -> None:
    decoded = read_image(_write(tmp_path, "g.png", _png(_gradient())))
    assert decoded.mode == "L"
    assert np.array_equal(decoded.pixels, _gradient())


def test_png_16bit_gradient_is_windowed_not_white() -> None:
    ramp = np.tile(np.linspace(0, 65535, 256), (16, 1)).astype(np.uint16)
    decoded = read_image(_encode(Image.fromarray(ramp), "PNG"))
    assert decoded.mode.startswith("I") and decoded.bit_depth == 16
    pixels = decoded.pixels
    assert pixels.dtype == np.uint8 and pixels.shape == (16, 256)
    assert pixels.min() <= 2 and pixels.max() >= 253
    assert 100 < pixels.mean() < 155
    assert np.all(np.diff(pixels[0].astype(int)) >= 0)  # monotone ramp survives


def test_constant_16bit_maps_to_zeros() -> None:
    flat = np.full((8, 8), 1234, dtype=np.uint16)
    decoded = read_image(_encode(Image.fromarray(flat), "PNG"))
    assert np.array_equal(decoded.pixels, np.zeros((8, 8), np.uint8))


def test_rescale_to_uint8_edge_cases() -> None:
    assert rescale_to_uint8(np.full((3, 3), 7.0)).max() == 0
    spikes = np.zeros((100, 100))
    spikes[0, 0] = 50.0  # percentiles collapse: fall back to min/max
    assert rescale_to_uint8(spikes)[0, 0] == 255
    with_nan = np.array([[0.0, np.nan], [1.0, 2.0]])
    assert rescale_to_uint8(with_nan).dtype == np.uint8


def test_rgba_flattened_on_black() -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., :3] = 255  # white everywhere
    rgba[0, 0, 3] = 0  # fully transparent
    rgba[0, 1, 3] = 255  # opaque
    rgba[0, 2, 3] = 128  # half
    decoded = read_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert decoded.mode == "RGBA" and decoded.channels == 4
    assert decoded.pixels.shape == (4, 4, 3)
    assert decoded.pixels[0, 0].tolist() == [0, 0, 0]
    assert decoded.pixels[0, 1].tolist() == [255, 255, 255]
    assert decoded.pixels[0, 2].tolist() == [128, 128, 128]


def test_la_flattened_to_gray() -> None:
    la = np.zeros((4, 4, 2), dtype=np.uint8)
    la[..., 0] = 200
    la[..., 1] = 255
    la[1, 1, 1] = 0
    decoded = read_image(_encode(Image.fromarray(la, "LA"), "PNG"))
    assert decoded.mode == "LA" and decoded.channels == 2
    assert decoded.pixels.shape == (4, 4)
    assert decoded.pixels[0, 0] == 200 and decoded.pixels[1, 1] == 0


def test_palette_png_with_and_without_transparency() -> None:
    img = Image.fromarray(_rgb(8, 8)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    expected = np.asarray(img.convert("RGB"))
    decoded = read_image(_encode(img, "PNG"))
    assert decoded.mode == "P" and decoded.channels == 1
    assert np.array_equal(decoded.pixels, expected)
    index = img.getpixel((0, 0))
    transparent = read_image(_encode(img, "PNG", transparency=index))
    assert transparent.pixels.shape == (8, 8, 3)
    assert transparent.pixels[0, 0].tolist() == [0, 0, 0]


def test_one_bit_png_is_0_or_255() -> None:
    bits = Image.fromarray(_gradient() > 128)
    decoded = read_image(_encode(bits, "PNG"))
    assert decoded.mode == "1" and decoded.pixels.dtype == np.uint8
    assert set(np.unique(decoded.pixels).tolist()) == {0, 255}


def test_bmp() -> None:
    decoded = read_image(_encode(Image.fromarray(_rgb()), "BMP"), name="x.bmp")
    assert decoded.format == "BMP"
    assert np.array_equal(decoded.pixels, _rgb())


def test_cmyk_jpeg_becomes_rgb() -> None:
    decoded = read_image(_encode(Image.fromarray(_rgb()).convert("CMYK"), "JPEG"))
    assert decoded.mode == "CMYK" and decoded.channels == 4
    assert decoded.pixels.shape == (48, 64, 3)


def test_tiff_8_and_16_bit(tmp_path: Path) -> None:
    eight = read_image(_write(tmp_path, "a.tif", _encode(Image.fromarray(_gradient()), "TIFF")))
    assert eight.format == "TIFF" and np.array_equal(eight.pixels, _gradient())
    ramp = (_gradient().astype(np.uint16) * 200 + 1000).astype(np.uint16)
    sixteen = read_image(_write(tmp_path, "b.tiff", _encode(Image.fromarray(ramp), "TIFF")))
    assert sixteen.bit_depth == 16 and sixteen.pixels.dtype == np.uint8
    assert sixteen.pixels.min() <= 2 and sixteen.pixels.max() >= 253


def test_multipage_tiff_frames() -> None:
    pages = [Image.fromarray(np.full((6, 5), v, dtype=np.uint8)) for v in (10, 20, 30)]
    data = _encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    frames = read_frames(data)
    assert [int(f.pixels[0, 0]) for f in frames] == [10, 20, 30]
    assert all(f.frames == 3 for f in frames)
    assert read_image(data, frame=2).pixels[0, 0] == 30
    with pytest.raises(ImageReadError, match="frame 3 out of range"):
        read_image(data, frame=3)
    with pytest.raises(ImageReadError, match="negative"):
        read_image(data, frame=-1)


def test_single_image_read_frames_gives_one() -> None:
    frames = read_frames(_png(_gradient()))
    assert len(frames) == 1 and frames[0].frames == 1


# ---------------------------------------------------------------- hostile input


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = _jpeg(np.random.default_rng(RNG_SEED).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    path = _write(tmp_path, "half.jpg", data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"^half\.jpg: truncated or corrupt JPEG"):
        read_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_png() -> None:
    data = _png(np.random.default_rng(RNG_SEED).integers(0, 255, (64, 64), dtype=np.uint8))
    with pytest.raises(ImageReadError, match="truncated or corrupt PNG"):
        read_image(data[: len(data) * 2 // 3])


def test_jpeg_with_random_middle() -> None:
    rng = np.random.default_rng(RNG_SEED)
    data = bytearray(_jpeg(_rgb(64, 64)))
    middle = len(data) // 3
    data[middle : middle + len(data) // 3] = rng.bytes(len(data) // 3)
    try:
        decoded = read_image(bytes(data))
    except ImageReadError:
        return
    assert decoded.pixels.dtype == np.uint8


def _bomb_png(width: int, height: int) -> bytes:
    """A 1x1 PNG whose IHDR claims width x height (CRC fixed, so only the size lies)."""
    data = bytearray(_png(np.zeros((1, 1), dtype=np.uint8)))
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes of fields
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("size", [(30_000, 30_000), (8_000, 6_000), (100_000, 1_000)])
def test_decompression_bomb_rejected_fast(size: tuple[int, int]) -> None:
    data = _bomb_png(*size)
    assert len(data) < 200
    start = time.perf_counter()
    with pytest.raises(ImageReadError, match=r"too large|exceeds"):
        read_image(data, name="bomb.png")
    assert time.perf_counter() - start < 2.0  # a real decode would take far longer and GBs
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # untouched global


def test_small_max_pixels_rejects_normal_image() -> None:
    with pytest.raises(ImageReadError, match="64x48 = 3,072 pixels exceeds the 1,000-pixel"):
        read_image(_png(_gradient()), max_pixels=1_000)


def _mutations(data: bytes, rng: np.random.Generator, count: int) -> list[bytes]:
    out: list[bytes] = []
    for i in range(count):
        kind = i % 4
        if kind == 0:  # truncation anywhere, header included
            out.append(data[: int(rng.integers(1, len(data)))])
        elif kind == 1:  # a handful of byte flips
            buf = bytearray(data)
            for pos in rng.integers(0, len(buf), int(rng.integers(1, 8))):
                buf[pos] = int(rng.integers(0, 256))
            out.append(bytes(buf))
        elif kind == 2:  # flips confined to the header, where sizes live
            buf = bytearray(data)
            for pos in rng.integers(0, min(len(buf), 200), int(rng.integers(1, 4))):
                buf[pos] ^= 1 << int(rng.integers(0, 8))
            out.append(bytes(buf))
        else:  # header only, then garbage
            cut = int(rng.integers(8, 200))
            tail = rng.integers(0, 256, int(rng.integers(0, 500)), dtype=np.uint8)
            out.append(data[:cut] + tail.tobytes())
    return out


def _assert_decodes_or_read_error(sample: bytes, max_pixels: int = 4_000_000) -> None:
    try:
        decoded = read_image(sample, max_pixels=max_pixels)
    except ImageReadError as err:
        assert "\n" not in str(err) and str(err).startswith("upload: ")
        return
    assert decoded.pixels.dtype == np.uint8 and decoded.pixels.ndim in (2, 3)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fuzz_jpeg_and_png() -> None:
    rng = np.random.default_rng(RNG_SEED)
    base = rng.integers(0, 255, (32, 40, 3), dtype=np.uint8)
    for data in (_jpeg(base), _png(base)):
        for sample in _mutations(data, rng, 100):
            _assert_decodes_or_read_error(sample)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fuzz_dicom() -> None:
    rng = np.random.default_rng(RNG_SEED)
    data = Path(_dicom_file("MR_small.dcm")).read_bytes()
    for sample in _mutations(data, rng, 60):
        _assert_decodes_or_read_error(sample)


# ---------------------------------------------------------------- DICOM


def test_dicom_mr_small() -> None:
    decoded = read_image(_dicom_file("MR_small.dcm"))
    assert decoded.format == "DICOM" and decoded.mode == "MONOCHROME2"
    assert decoded.pixels.shape == (64, 64) and decoded.pixels.dtype == np.uint8
    assert decoded.pixels.std() > 10
    assert (decoded.channels, decoded.bit_depth, decoded.frames) == (1, 16, 1)


def test_dicom_without_window_uses_robust_range() -> None:
    decoded = read_image(_dicom_file("CT_small.dcm"))
    assert decoded.pixels.shape == (128, 128)
    assert decoded.pixels.min() == 0 and decoded.pixels.max() == 255


def test_dicom_detected_by_content(tmp_path: Path) -> None:
    data = Path(_dicom_file("MR_small.dcm")).read_bytes()
    assert read_image(_write(tmp_path, "scan.png", data)).format == "DICOM"
    assert read_image(data).pixels.shape == (64, 64)


def test_dicom_rle_matches_uncompressed() -> None:
    plain = read_image(_dicom_file("MR_small.dcm")).pixels
    assert np.array_equal(read_image(_dicom_file("MR_small_RLE.dcm")).pixels, plain)


def test_dicom_multiframe(tmp_path: Path) -> None:
    ds = _mr_small()
    base = ds.pixel_array
    stack = np.stack([base, base.max() - base, base // 2, base, base]).astype(base.dtype)
    ds.NumberOfFrames = 5
    ds.PixelData = stack.tobytes()
    path = _save_dicom(ds, tmp_path / "volume.dcm")
    frames = read_frames(path)
    assert len(frames) == 5 and all(f.frames == 5 for f in frames)
    assert all(f.pixels.shape == (64, 64) for f in frames)
    assert not np.array_equal(frames[0].pixels, frames[1].pixels)
    assert np.array_equal(read_image(path, frame=1).pixels, frames[1].pixels)
    assert np.array_equal(read_image(path).pixels, read_image(_dicom_file("MR_small.dcm")).pixels)
    with pytest.raises(ImageReadError, match=r"^volume\.dcm: frame 5 out of range"):
        read_image(path, frame=5)
    with pytest.raises(ImageReadError, match="pixel limit"):
        read_frames(path, max_pixels=5_000)  # each frame fits, the volume does not


def test_dicom_rgb_multiframe() -> None:
    frames = read_frames(_dicom_file("SC_rgb_rle_2frame.dcm"))
    assert len(frames) == 2
    assert frames[0].pixels.shape == (100, 100, 3) and frames[0].mode == "RGB"
    assert frames[0].channels == 3


def test_dicom_monochrome1_is_inverted(tmp_path: Path) -> None:
    ds = _mr_small()
    ds.PhotometricInterpretation = "MONOCHROME1"
    inverted = read_image(_save_dicom(ds, tmp_path / "m1.dcm"))
    normal = read_image(_dicom_file("MR_small.dcm"))
    assert inverted.mode == "MONOCHROME1"
    assert np.array_equal(inverted.pixels, 255 - normal.pixels)


def test_dicom_missing_plugin_names_transfer_syntax() -> None:
    path = _dicom_file("MR_small_jpeg_ls_lossless.dcm")
    syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
    if get_decoder(syntax).is_available:
        pytest.skip("a JPEG-LS decoder plugin is installed")
    with pytest.raises(ImageReadError, match="needs a decoder plugin") as info:
        read_image(path)
    assert "JPEG-LS" in str(info.value) and "1.2.840.10008.1.2.4.80" in str(info.value)
    assert "pip install pylibjpeg" in str(info.value)


def test_dicom_syntax_without_any_decoder() -> None:
    data = Path(_dicom_file("MR_small.dcm")).read_bytes()
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.PixelData = encapsulate([ds.PixelData])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: pydicom cannot decode
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    with pytest.raises(ImageReadError, match=r"MPEG2 .*1\.2\.840\.10008\.1\.2\.4\.100"):
        read_image(buf.getvalue())


def test_dicom_without_pixels(tmp_path: Path) -> None:
    ds = _mr_small()
    del ds.PixelData
    path = _save_dicom(ds, tmp_path / "nopix.dcm")
    with pytest.raises(ImageReadError, match=r"^nopix\.dcm: DICOM file has no pixel data"):
        read_image(path)


def test_dicom_over_pixel_limit_checked_from_header() -> None:
    with pytest.raises(ImageReadError, match="exceeds the 100-pixel limit"):
        read_image(_dicom_file("MR_small.dcm"), max_pixels=100)


def test_dicom_truncated() -> None:
    data = Path(_dicom_file("MR_small.dcm")).read_bytes()
    with pytest.raises(ImageReadError, match="truncated or corrupt DICOM"):
        read_image(data[: len(data) - 500])


# ---------------------------------------------------------------- to_grayscale, threads


def test_to_grayscale_matches_pillow() -> None:
    rgb = np.random.default_rng(RNG_SEED).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    gray = to_grayscale(rgb)
    assert gray.shape == (17, 23) and gray.dtype == np.uint8
    assert np.array_equal(gray, expected)
    assert to_grayscale(expected) is expected
    with pytest.raises(ValueError):
        to_grayscale(np.zeros((4, 4, 2), dtype=np.uint8))


def test_thread_safe_mixed_reads() -> None:
    good = _png(_gradient())
    bad = good[: len(good) // 2]
    dicom = Path(_dicom_file("MR_small.dcm")).read_bytes()

    def work(i: int) -> str:
        try:
            return read_image((good, bad, dicom)[i % 3]).format
        except ImageReadError:
            return "error"

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(60)))
    assert results == ["PNG", "error", "DICOM"] * 20
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
