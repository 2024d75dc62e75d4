"""Synthetic demo dataset: MRI-like phantom slices for first runs and fast tests.

Every image is a procedurally drawn phantom, NOT medical data. The dataset root carries
SYNTHETIC_DEMO.json so the rest of the workbench can label it as synthetic everywhere.
"""

from __future__ import annotations

import cmath
import contextlib
import functools
import json
import math
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DEMO_CLASSES: tuple[str, ...] = ("glioma", "meningioma", "notumor", "pituitary")
MARKER_FILE = "SYNTHETIC_DEMO.json"
GENERATOR_VERSION: int = 1
NOTE = "Synthetic phantom images made by Brain Tumor Workbench. Not medical data."

_SPLITS = (("Training", "train"), ("Testing", "test"))
_JPEG_EVERY = 10  # every 10th slot is JPEG so both decoders get exercised
_N_EXACT, _N_NEAR = 3, 3
_ACQ_RANGES = ((0.5, 0.9), (0.85, 1.15), (0.8, 1.05), (0.01, 0.04))  # blur, gamma, gain, noise
_Key = tuple[str, str, int]  # (split, class, index)


@dataclass(frozen=True)
class _Head:
    """Head-frame coordinates: u/v are 1.0 at the outer skull, v grows towards the skull base."""

    u: np.ndarray
    v: np.ndarray
    r: np.ndarray
    skull_in: float  # inner skull surface
    inner: float  # brain surface (a thin dark CSF layer lies between)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    # Upsampling a coarse grid is much cheaper than a wide Gaussian blur at the same scale.
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    field = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    return (field - field.mean()) / (field.std() + 1e-6)


def _lobes(du: np.ndarray, dv: np.ndarray, rng: np.random.Generator, amp: float) -> np.ndarray:
    # Random-phase angular harmonics k=2..5 via powers of the unit direction (cheaper than cos).
    z = (du + 1j * dv).astype(np.complex64)
    z /= np.abs(z) + 1e-6
    zk, acc = z * z, np.zeros(z.shape, np.complex64)
    for _ in range(4):
        acc += cmath.rect(rng.uniform(0, amp), rng.uniform(0, 2 * np.pi)) * zk
        zk *= z
    return acc.real


@functools.lru_cache(maxsize=4)
def _grid(s: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5
    x.flags.writeable = y.flags.writeable = False  # shared across calls and threads
    return x, y


def _head_frame(rng: np.random.Generator, s: int) -> _Head:
    b = s * rng.uniform(0.37, 0.42)
    a = b * rng.uniform(0.75, 0.95)
    theta = math.radians(rng.uniform(-20.0, 20.0))
    x, y = _grid(s)
    dx, dy = x - s * rng.uniform(0.47, 0.53), y - s * rng.uniform(0.47, 0.53)
    v = (-dx * math.sin(theta) + dy * math.cos(theta)) / b
    u = (dx * math.cos(theta) + dy * math.sin(theta)) / a * (1 + rng.uniform(-0.15, 0.15) * v)
    # Low harmonics give every skull its own outline rather than a perfect ellipse.
    r = np.hypot(u, v) / (1 + _lobes(u, v, rng, 0.03))
    t = rng.uniform(0.05, 0.08)
    return _Head(u, v, r, 1 - t, 1 - t - rng.uniform(0.015, 0.03))


def _anatomy(h: _Head, rng: np.random.Generator, s: int) -> np.ndarray:
    img = np.zeros((s, s), np.float32)
    img[h.r < 1.06] = rng.uniform(0.3, 0.45)  # scalp
    img[h.r < 1.0] = rng.uniform(0.82, 0.95)  # skull ring
    img[h.r < h.skull_in] = 0.08  # subarachnoid CSF
    fold = _smooth_noise(rng, s, 12)
    brain = h.r < h.inner + 0.012 * fold
    wm = brain & (h.r + 0.07 * fold < h.inner - rng.uniform(0.1, 0.17))
    img[brain] = rng.uniform(0.34, 0.42)  # cortex (T1: grey darker than white matter)
    img[wm] = rng.uniform(0.5, 0.58)
    img[brain & ~wm & (np.abs(_smooth_noise(rng, s, 20)) < 0.12)] = 0.15  # sulci
    texture = 0.06 * _smooth_noise(rng, s, 10) + 0.03 * _smooth_noise(rng, s, 24)
    img += texture * brain
    img[brain & (np.abs(h.u) < 0.012)] *= 0.45  # interhemispheric fissure
    size, v0 = rng.uniform(0.7, 1.3), rng.uniform(-0.15, 0.02)  # slice level varies ventricles
    for side in (-1, 1):
        ang = math.radians(-side * rng.uniform(5, 22))  # butterfly: horns meet up top
        du, dv = h.u - side * rng.uniform(0.07, 0.11) * size, h.v - v0
        eu = (du * math.cos(ang) + dv * math.sin(ang)) / (rng.uniform(0.04, 0.07) * size)
        ev = (-du * math.sin(ang) + dv * math.cos(ang)) / (rng.uniform(0.18, 0.26) * size)
        img[eu**2 + ev**2 < 1] = 0.12  # T1 style: ventricles dark
    return img


def _glioma(img: np.ndarray, h: _Head, rng: np.random.Generator) -> None:
    side = 1.0 if rng.random() < 0.5 else -1.0
    du, dv = h.u - side * rng.uniform(0.22, 0.45), h.v - rng.uniform(-0.45, 0.3)
    rho = rng.uniform(0.12, 0.22) * (1 + _lobes(du, dv, rng, 0.14))
    ragged = _smooth_noise(rng, img.shape[0], 14)
    d = np.hypot(du, dv) / rho + 0.12 * ragged  # ragged, infiltrative margin
    tissue = h.r < h.inner
    oedema = tissue & (d < rng.uniform(1.5, 2.0))
    img[oedema] = img[oedema] * 0.6 + 0.04  # T1-hypointense oedema halo
    img[tissue & (d < 1)] = rng.uniform(0.78, 0.95)  # enhancing rim
    core = tissue & (d < rng.uniform(0.55, 0.75))
    img[core] = 0.28 + 0.12 * ragged[core]  # heterogeneous necrotic core


def _meningioma(img: np.ndarray, h: _Head, rng: np.random.Generator) -> None:
    psi = math.radians(rng.uniform(-200.0, 20.0))  # convexity or sides, never the skull base
    radius = rng.uniform(0.14, 0.24)
    rc = h.inner - radius * rng.uniform(0.3, 0.55)
    d = np.hypot(h.u - rc * math.cos(psi), h.v - rc * math.sin(psi))
    inside = h.r < h.skull_in
    img[inside & (d < radius + 0.03)] = 0.1  # CSF cleft: the mass pushes brain, not invades it
    gap = (np.arctan2(h.v, h.u) - psi + math.pi) % (2 * math.pi) - math.pi
    tail = inside & (h.r > h.inner - 0.02) & (np.abs(gap) < 1.6 * radius / rc)
    img[tail] = 0.7  # dural tail along the inner skull
    mass = inside & (d < radius)
    img[mass] = rng.uniform(0.85, 0.97) + 0.02 * _smooth_noise(rng, img.shape[0], 8)[mass]


def _pituitary(img: np.ndarray, h: _Head, rng: np.random.Generator) -> None:
    du, dv = h.u - rng.uniform(-0.03, 0.03), h.v - rng.uniform(0.58, 0.66)
    rx, ry = rng.uniform(0.07, 0.11), rng.uniform(0.06, 0.09)
    d = (du / rx) ** 2 + (dv / ry) ** 2
    img[d < 1.6] = 0.1  # CSF around the sella
    img[d < 1] = rng.uniform(0.85, 0.97)


_LESIONS: dict[str, Callable[[np.ndarray, _Head, np.random.Generator], None]] = {
    "glioma": _glioma,
    "meningioma": _meningioma,
    "pituitary": _pituitary,
    "notumor": lambda img, h, rng: None,
}


def render_slice(label: str, rng: np.random.Generator, image_size: int) -> np.ndarray:
    """Draw one synthetic T1-like phantom brain slice of `label` as uint8 (H, W)."""
    if label not in _LESIONS:
        raise ValueError(f"unknown class {label!r}; expected one of {DEMO_CLASSES}")
    s = image_size
    h = _head_frame(rng, s)
    img = _anatomy(h, rng, s)
    # Acquisition randomness is drawn before the lesion, so the same rng state renders the same
    # head for every label: the classes then differ only by the lesion (a clean counterfactual).
    bias = 1 + rng.uniform(0.08, 0.25) * _smooth_noise(rng, s, 3)  # receive-coil bias field
    blur, gamma, gain, sigma = (rng.uniform(*lim) for lim in _ACQ_RANGES)
    noise = sigma * rng.standard_normal((2, s, s), dtype=np.float32)
    _LESIONS[label](img, h, rng)
    img = cv2.GaussianBlur(img * bias, (0, 0), blur * max(1.0, s / 128))  # scale-free look
    img = np.clip(img, 0, None) ** gamma * gain
    # Magnitude of complex Gaussian noise gives the Rician floor seen in real MR backgrounds.
    mag = np.hypot(img + noise[0], noise[1])
    return np.clip(mag * 255 + 0.5, 0, 255).astype(np.uint8)


def _encode(img: np.ndarray, ext: str, quality: int = 92) -> bytes:
    # Fixed encoder parameters keep files byte-identical across runs; cv2 writes no timestamps.
    params = (
        [cv2.IMWRITE_PNG_COMPRESSION, 6] if ext == ".png" else [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:
        raise RuntimeError(f"could not encode {ext}")
    return buf.tobytes()


def _near_copy(img: np.ndarray, rng: np.random.Generator, variant: int) -> tuple[str, bytes]:
    # Shift towards the wider margin so the head is never cut: the copy must stay "near".
    ys, xs = np.nonzero(img > 40)
    s = img.shape[0]
    sx = -1 if xs.min() > s - 1 - xs.max() else 1
    sy = -1 if ys.min() > s - 1 - ys.max() else 1
    dx, dy = (int(k) for k in rng.integers(2, 5, size=2))
    shift = np.float32([[1, 0, sx * dx], [0, 1, sy * dy]])
    out = cv2.warpAffine(img, shift, (s, s), flags=cv2.INTER_NEAREST, borderValue=0)
    if variant > 0:
        gain = 1 + (1 if rng.random() < 0.5 else -1) * rng.uniform(0.05, 0.1)
        out = np.clip(out * gain + 0.5, 0, 255).astype(np.uint8)
    ext = ".png" if variant == 1 else ".jpg"
    return ext, _encode(out, ext, quality=85)


def _plan(rng: np.random.Generator, n_train: int, n_test: int) -> list[tuple[str, _Key, _Key]]:
    """Pick (kind, planted_slot, source_slot) triples; random slots, each source used once."""
    free = {
        (split, c): [int(i) for i in rng.permutation(n)]
        for split, n in (("Training", n_train), ("Testing", n_test))
        for c in DEMO_CLASSES
    }
    plan = []
    for i in range(_N_EXACT + _N_NEAR):
        cls = DEMO_CLASSES[i % len(DEMO_CLASSES)]
        if free["Training", cls] and free["Testing", cls]:
            kind = "exact_cross_split" if i < _N_EXACT else "near_cross_split"
            dst, src = free["Testing", cls].pop(), free["Training", cls].pop()
            plan.append((kind, ("Testing", cls, dst), ("Training", cls, src)))
    src_cls, dst_cls = "meningioma", "notumor"  # a tumour slice mislabelled as healthy
    if free["Training", src_cls] and free["Training", dst_cls]:
        src = ("Training", src_cls, free["Training", src_cls].pop())
        plan.append(
            ("conflicting_labels", ("Training", dst_cls, free["Training", dst_cls].pop()), src)
        )
    return plan


def _render_all(p: dict) -> tuple[dict[_Key, np.ndarray], dict[_Key, tuple[str, bytes]]]:
    n = {"Training": p["train_per_class"], "Testing": p["test_per_class"]}
    images: dict[_Key, np.ndarray] = {}
    blobs: dict[_Key, tuple[str, bytes]] = {}
    for si, (split, _) in enumerate(_SPLITS):
        for ci, cls in enumerate(DEMO_CLASSES):
            for i in range(n[split]):
                # Per-slot seeds keep each image independent of generation order and counts.
                rng = np.random.default_rng([p["seed"], si, ci, i])
                img = render_slice(cls, rng, p["image_size"])
                ext = ".jpg" if i % _JPEG_EVERY == _JPEG_EVERY - 3 else ".png"
                images[split, cls, i], blobs[split, cls, i] = img, (ext, _encode(img, ext))
    return images, blobs


def _build(tmp: Path, p: dict) -> dict:
    """Render and write every file under tmp; return the marker content."""
    images, blobs = _render_all(p)
    # Tagged seed streams (7919, 31) keep planting independent of the per-image streams.
    plan = _plan(
        np.random.default_rng([p["seed"], 7919]), p["train_per_class"], p["test_per_class"]
    )
    for j, (kind, dst, src) in enumerate(plan):
        if kind == "near_cross_split":
            blobs[dst] = _near_copy(images[src], np.random.default_rng([p["seed"], 31, j]), j % 3)
        else:
            blobs[dst] = blobs[src]  # byte-identical copy, hence identical pixels
    rel = {}
    for key, (ext, data) in blobs.items():
        split, cls, i = key
        rel[key] = f"{split}/{cls}/demo_{cls}_{dict(_SPLITS)[split]}_{i + 1:04d}{ext}"
        (tmp / rel[key]).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel[key]).write_bytes(data)
    planted: dict[str, list] = {"exact_cross_split": [], "near_cross_split": []}
    planted["conflicting_labels"] = []
    for kind, dst, src in plan:
        planted[kind].append([rel[dst], rel[src]])  # [planted copy, its source]
    n = {"Training": p["train_per_class"], "Testing": p["test_per_class"]}
    return {
        "synthetic": True,
        "generator_version": GENERATOR_VERSION,
        "params": p,
        "classes": list(DEMO_CLASSES),
        "counts": {split: dict.fromkeys(DEMO_CLASSES, n[split]) for split, _ in _SPLITS},
        "planted": planted,
        "note": NOTE,
    }


def read_marker(root: Path) -> dict | None:
    """Return the parsed SYNTHETIC_DEMO.json at root, or None if absent or unreadable."""
    try:
        data = json.loads((Path(root) / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_synthetic_dataset(root: Path) -> bool:
    """True when root holds a synthetic demo dataset marker."""
    marker = read_marker(root)
    return marker is not None and marker.get("synthetic") is True


def _matches(root: Path, params: dict) -> bool:
    marker = read_marker(root) or {}
    return marker.get("generator_version") == GENERATOR_VERSION and marker.get("params") == params


def _check_replaceable(root: Path) -> None:
    # Only an old demo dataset may be replaced; user data is never touched.
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root} is a file; will not overwrite it with the demo dataset")
    if root.is_dir() and read_marker(root) is None and any(root.iterdir()):
        raise ValueError(
            f"{root} is not empty and has no {MARKER_FILE}; "
            "will not overwrite a non-demo folder with the synthetic demo dataset"
        )


def _install(tmp: Path, root: Path, params: dict) -> None:
    for _ in range(10):
        try:
            os.rename(tmp, root)  # atomic; fails while root is a non-empty directory
            return
        except OSError:
            if _matches(root, params):
                return  # a concurrent writer installed the same dataset first; ours is discarded
            _check_replaceable(root)
        old = root.parent / f".{root.name}.old-{uuid.uuid4().hex}"
        with contextlib.suppress(FileNotFoundError):
            os.rename(root, old)  # stale demo of another version/params: move aside, retry
            shutil.rmtree(old, ignore_errors=True)
    raise RuntimeError(f"could not install the demo dataset at {root}")


def generate_demo_dataset(
    root: Path,
    *,
    train_per_class: int = 60,
    test_per_class: int = 15,
    image_size: int = 128,
    seed: int = 0,
) -> Path:
    """Write the synthetic demo dataset at root (atomically, idempotently) and return root."""
    root = Path(root)
    if min(train_per_class, test_per_class) < 1 or image_size < 32:
        raise ValueError("need train/test_per_class >= 1 and image_size >= 32")
    params = {"image_size": image_size, "seed": seed, "test_per_class": test_per_class,
              "train_per_class": train_per_class}  # fmt: skip
    if _matches(root, params):
        return root
    _check_replaceable(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.tmp-{uuid.uuid4().hex}"  # unique per concurrent caller
    try:
        tmp.mkdir()
        marker = _build(tmp, params)
        # Marker last: its presence then implies a complete tree.
        text = json.dumps(marker, indent=2, sort_keys=True) + "\n"
        (tmp / MARKER_FILE).write_text(text, encoding="utf-8")
        _install(tmp, root, params)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
