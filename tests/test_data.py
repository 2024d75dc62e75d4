"""Dataset discovery, indexing, the index cache and the decoded-image cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data import image_cache, index
from core.data.discovery import DatasetError, discover
from core.data.index import open_dataset
from core.data.locate import resolve_dataset_dir
from core.events import PROGRESS, Events


def write_image(path: Path, seed: int, size: int = 32, mode: str = "L") -> None:
    """A small random image file (distinct content per seed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)
    image = Image.fromarray(pixels)
    if mode == "I;16":
        image = Image.fromarray(pixels.astype(np.uint16) * 257)
    elif mode != "L":
        image = image.convert(mode)
    image.save(path)


def make_kaggle(root: Path, per_class: int = 4, classes: tuple[str, ...] = ("a", "b")) -> Path:
    seed = 0
    for split, count in (("Training", per_class), ("Testing", 2)):
        for label in classes:
            for number in range(count):
                seed += 1
                write_image(root / split / label / f"{label}_{number}.png", seed)
    return root


def test_kaggle_layout_with_case_insensitive_split_names(tmp_path: Path) -> None:
    root = make_kaggle(tmp_path / "ds")
    (root / "Training").rename(root / "train")
    (root / "Testing").rename(root / "TEST")
    layout = discover(root)
    assert layout.layout == "kaggle"
    assert layout.classes == ("a", "b")
    assert {split for _, _, split in layout.files} == {"train", "test"}
    assert len(layout.files) == 12


def test_flat_layout_puts_everything_in_training(tmp_path: Path) -> None:
    for label in ("glioma", "notumor"):
        for number in range(3):
            write_image(tmp_path / label / f"{number}.jpg", number + 10 * len(label))
    dataset = open_dataset(tmp_path)
    assert dataset.layout == "flat"
    assert dataset.counts() == {"train": {"glioma": 3, "notumor": 3}}


def test_junk_files_are_skipped_and_counted(tmp_path: Path) -> None:
    root = make_kaggle(tmp_path / "ds")
    (root / "Training" / "a" / ".DS_Store").write_bytes(b"junk")
    (root / "Training" / "a" / "notes.txt").write_text("not an image")
    (root / "Training" / "a" / ".ipynb_checkpoints").mkdir()
    write_image(root / "Training" / "a" / ".ipynb_checkpoints" / "copy.png", 99)
    (root / "Training" / "__MACOSX").mkdir()
    (root / "README.md").write_text("about")
    (root / "Extras").mkdir()
    (root / "Training" / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    dataset = open_dataset(root)
    reasons = {item.path: item.reason for item in dataset.skipped}
    assert reasons["Training/a/.DS_Store"] == "hidden file"
    assert reasons["Training/a/notes.txt"].startswith("not an image file")
    assert reasons["README.md"] == "file outside any class folder"
    assert "Extras/" in reasons
    assert "Training/a/broken.jpg" in reasons
    assert not any("ipynb" in path for path in dataset.frame["path"])
    assert len(dataset.frame) == 12


def test_corrupt_and_truncated_jpegs_are_reported_by_name(tmp_path: Path) -> None:
    root = make_kaggle(tmp_path / "ds")
    good = root / "Training" / "a" / "good.jpg"
    write_image(good, 5, size=64, mode="RGB")
    truncated = root / "Training" / "a" / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    dataset = open_dataset(root)
    skipped = {item.path for item in dataset.skipped}
    assert "Training/a/truncated.jpg" in skipped
    assert "Training/a/good.jpg" in set(dataset.frame["path"])


def test_sixteen_bit_png_is_indexed_with_its_mode(tmp_path: Path) -> None:
    root = make_kaggle(tmp_path / "ds")
    write_image(root / "Training" / "b" / "deep.png", 7, mode="I;16")
    dataset = open_dataset(root)
    row = dataset.frame.set_index("path").loc["Training/b/deep.png"]
    assert row["mode"].startswith("I")
    assert 20 < row["mean_intensity"] < 235  # rescaled, not clipped to white


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda root: root.mkdir(), "no images found"),
        (lambda root: make_kaggle(root, classes=("only",)), "at least two classes"),
        (lambda root: (make_kaggle(root), (root / "Training" / "empty").mkdir()), "has no images"),
        (lambda root: None, "no such folder"),
        (lambda root: root.write_text("file"), "not a folder"),
    ],
    ids=["empty", "one-class", "empty-class", "missing", "file"],
)
def test_unusable_folders_give_a_clear_error(tmp_path: Path, build, message: str) -> None:
    root = tmp_path / "ds"
    build(root)
    with pytest.raises(DatasetError, match=message):
        open_dataset(root)


def test_test_class_missing_from_training_is_an_error(tmp_path: Path) -> None:
    root = make_kaggle(tmp_path / "ds")
    write_image(root / "Testing" / "c" / "x.png", 3)
    with pytest.raises(DatasetError, match="'c' appears in test but not in training"):
        discover(root)


def test_index_is_cached_and_rebuilt_when_files_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_kaggle(tmp_path / "ds")
    first = open_dataset(root)
    assert (first.cache_dir() / "index.parquet").is_file()

    def must_not_rebuild(*args: object, **kwargs: object) -> None:
        raise AssertionError("index rebuilt although nothing changed")

    with monkeypatch.context() as patch:
        patch.setattr(index, "build_index", must_not_rebuild)
        second = open_dataset(root)
    assert second.fingerprint == first.fingerprint
    assert second.frame.equals(first.frame)
    write_image(root / "Training" / "a" / "new.png", 1234)
    third = open_dataset(root)
    assert len(third.frame) == len(first.frame) + 1
    assert third.fingerprint != first.fingerprint


def test_exact_duplicates_share_a_pixel_hash_across_formats(tmp_path: Path) -> None:
    root = make_kaggle(tmp_path / "ds")
    source = root / "Training" / "a" / "a_0.png"
    Image.open(source).save(root / "Testing" / "a" / "copy.bmp")
    frame = open_dataset(root).frame.set_index("path")
    original, copy = frame.loc["Training/a/a_0.png"], frame.loc["Testing/a/copy.bmp"]
    assert original["pixel_hash"] == copy["pixel_hash"]
    assert original["file_hash"] != copy["file_hash"]


def test_decoded_image_cache_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_kaggle(tmp_path / "ds")
    dataset = open_dataset(root)
    calls: list[int] = []
    events = Events()
    events.add_callback(PROGRESS, lambda stage: calls.append(stage.done))
    images = image_cache.load_images(dataset, 24, events=events)
    assert images.shape == (len(dataset.frame), 24, 24)
    assert images.dtype == np.uint8
    assert calls and calls[-1] == len(dataset.frame)
    with monkeypatch.context() as patch:
        patch.setattr(image_cache, "decode_all", lambda *a, **k: pytest.fail("decoded again"))
        again = image_cache.load_images(dataset, 24)
    np.testing.assert_array_equal(images, again)
    # The cached pixels are the reader's, resized: compare one image with a fresh decode.
    fresh = image_cache.decode_all(dataset, 24)
    np.testing.assert_array_equal(images, fresh)


def test_damaged_array_cache_is_rebuilt(tmp_path: Path) -> None:
    root = make_kaggle(tmp_path / "ds")
    dataset = open_dataset(root)
    images = image_cache.load_images(dataset, 16)
    image_cache.array_cache_path(dataset, 16).write_bytes(b"not numpy")
    np.testing.assert_array_equal(image_cache.load_images(dataset, 16), images)


def mixed_dataset(root: Path) -> Path:
    """Kaggle layout with images to shrink, enlarge and keep, RGB, 16-bit, JPEG and junk."""
    make_kaggle(root)
    write_image(root / "Training" / "a" / "big_rgb.png", 101, size=300, mode="RGB")
    write_image(root / "Training" / "a" / "exact.png", 102, size=index.INDEX_IMAGE_SIZE)
    write_image(root / "Training" / "b" / "deep.png", 103, size=200, mode="I;16")
    write_image(root / "Testing" / "b" / "photo.jpg", 104, size=180, mode="RGB")
    (root / "Training" / "b" / "junk.png").write_bytes(b"not a picture")  # skipped: no row
    return root


def test_indexing_saves_the_audit_size_array_exactly_as_a_decode_would(tmp_path: Path) -> None:
    from core.data.audit import AUDIT_IMAGE_SIZE

    assert AUDIT_IMAGE_SIZE == index.INDEX_IMAGE_SIZE
    dataset = open_dataset(mixed_dataset(tmp_path / "ds"))
    assert any(item.path.endswith("junk.png") for item in dataset.skipped)
    size = index.INDEX_IMAGE_SIZE
    saved = np.load(image_cache.array_cache_path(dataset, size), allow_pickle=False)
    fresh = image_cache.decode_all(dataset, size)
    assert saved.dtype == fresh.dtype == np.uint8
    assert saved.shape == fresh.shape == (len(dataset.frame), size, size)
    assert saved.tobytes() == fresh.tobytes()


def test_a_freshly_opened_dataset_is_not_decoded_again_at_the_audit_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.data import audit

    root = mixed_dataset(tmp_path / "ds")
    dataset = open_dataset(root)
    size = index.INDEX_IMAGE_SIZE
    with monkeypatch.context() as patch:
        patch.setattr(image_cache, "decode_all", lambda *a, **k: pytest.fail("decoded again"))
        images = image_cache.load_images(dataset, size)
        audit.load_candidates(dataset)  # the audit reads the same array
    assert images.shape == (len(dataset.frame), size, size)
    write_image(root / "Training" / "a" / "new.png", 1234)
    reopened = open_dataset(root)  # a new listing: its own array, the old one removed
    kept = sorted(reopened.cache_dir().glob(f"images-{size}px-*.npy"))
    assert kept == [image_cache.array_cache_path(reopened, size)]
    assert len(np.load(kept[0])) == len(dataset.frame) + 1


def test_resolve_prefers_explicit_then_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = make_kaggle(tmp_path / "explicit")
    configured = make_kaggle(tmp_path / "configured")
    monkeypatch.setenv("BTW_DATA_DIR", str(configured))
    assert resolve_dataset_dir(explicit) == explicit.resolve()
    assert resolve_dataset_dir() == configured.resolve()
