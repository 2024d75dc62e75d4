"""Frozen-layer caching: what a frozen prefix computes is computed once per image and view.

With a freeze policy (`head`, `top-N`) the leading blocks never change, so running them every
epoch repeats the same work. Their outputs are computed once for the validation images and for
a few views of the training images (view 0 as is, the others with the run's random
augmentation), stored as float16, and each epoch trains only the trainable top, every image
drawing one of its views at random.

Under DDP (`sharing`), each process computes its share of every training view and the shares
are gathered, so every process holds the whole view (its shards of the global batches change
every epoch); each validates on its own shard, so it caches that shard's validation images
only. Splitting the work was measured faster than every process computing everything
(docs/benchmarks.md, "Distributed training (DDP)").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn

from core.config import AugmentConfig
from core.events import Events, report_progress
from core.training.augment import augment_batch
from core.training.loops import StepSettings, TrainingCancelled, batch_order


class RowSharing(Protocol):
    """How DDP processes share the work (core.training.distributed.DistributedContext)."""

    @property
    def rank(self) -> int:
        """This process's place, 0..world_size-1."""
        ...

    @property
    def world_size(self) -> int:
        """How many processes train the run."""
        ...

    def gather_rows(self, part: torch.Tensor) -> torch.Tensor:
        """Every process's rows, concatenated in rank order, on every process."""
        ...


def share_bounds(count: int, rank: int, world_size: int) -> tuple[int, int]:
    """The contiguous rows [start, stop) of `count` that process `rank` computes."""
    return count * rank // world_size, count * (rank + 1) // world_size


@dataclass(frozen=True)
class FeatureSettings(StepSettings):
    """Step settings for inputs that already are cached features (no normalisation)."""

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """float16 features -> float32 on the device, in the memory format of the run."""
        x = images.to(self.device, non_blocking=True).float()
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


@dataclass
class FrozenFeatureCache:
    """Features of the frozen prefix: computed lazily per view, kept for the whole run."""

    frozen: nn.Module
    settings: StepSettings
    augment: AugmentConfig
    views: int
    seed: int
    events: Events | None = None  # hears 'progress' while features are computed
    # Small batches: MobileNetV2's frozen blocks ran 123 img/s in batches of 16 and 64 img/s in
    # batches of 128 at 160 px on the 2-core CPU (channels_last; cache locality), 92 vs 36 at 224.
    batch_size: int = 16
    sharing: RowSharing | None = None  # DDP: compute a share of each training view, gather
    _train_views: dict[int, torch.Tensor] = field(default_factory=dict, repr=False)
    _validation: torch.Tensor | None = field(default=None, repr=False)

    @property
    def feature_settings(self) -> FeatureSettings:
        """How the trainable top reads the cached features."""
        return FeatureSettings(
            self.settings.preprocessing,
            self.settings.device,
            bf16=self.settings.bf16,
            channels_last=self.settings.channels_last,
        )

    @torch.no_grad()
    def features(
        self,
        images: torch.Tensor,
        *,
        augment: AugmentConfig | None = None,
        generator: torch.Generator | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        label: str = "Computing the frozen layers' output",
    ) -> torch.Tensor:
        """The frozen prefix's output for every image, in order, as float16 on the CPU."""
        self.frozen.eval()
        outputs: list[torch.Tensor] = []
        done, total = 0, len(images)
        for positions in batch_order(total, self.batch_size, None):
            if should_stop():
                raise TrainingCancelled
            report_progress(self.events, "frozen-cache", done, total, f"{label}: {done}/{total}")
            done += len(positions)
            batch = images[torch.from_numpy(positions)]
            if augment is not None and augment.enabled and generator is not None:
                batch = augment_batch(batch, augment, generator)
            with self.settings.autocast():
                outputs.append(self.frozen(self.settings.prepare(batch)).to("cpu", torch.float16))
        report_progress(self.events, "frozen-cache", total, total, f"{label}: {total}/{total}")
        return torch.cat(outputs)

    def validation_view(
        self, images: torch.Tensor, should_stop: Callable[[], bool] = lambda: False
    ) -> torch.Tensor:
        """The validation images' features (never augmented), computed on first use."""
        if self._validation is None:
            label = "Caching the frozen layers' output for the validation images"
            self._validation = self.features(images, should_stop=should_stop, label=label)
        return self._validation

    def train_view(
        self, images: torch.Tensor, epoch: int, should_stop: Callable[[], bool] = lambda: False
    ) -> torch.Tensor:
        """The training features for `epoch` (1-based): each image from a random cached view.

        View e-1 is computed in epoch e (so caching is spread over the first epochs), and every
        image draws its view anew each epoch. Training a whole epoch on one augmented view made
        validation swing every other epoch (BatchNorm statistics followed the view).
        """
        available = min(epoch, max(self.views, 1))
        for view in range(available):
            if view not in self._train_views:
                self._train_views[view] = self._train_features(images, view, should_stop)
        if available == 1:
            return self._train_views[0]
        generator = torch.Generator().manual_seed(self.seed * 1000 + 100 + epoch)
        choice = torch.randint(available, (len(images),), generator=generator)
        mixed = self._train_views[0].clone()
        for view in range(1, available):
            chosen = choice == view
            mixed[chosen] = self._train_views[view][chosen]
        return mixed

    def _train_features(
        self, images: torch.Tensor, view: int, should_stop: Callable[[], bool]
    ) -> torch.Tensor:
        """One view of every training image: here, or under DDP a share here, then gathered."""
        # Each view has its own seeded generator: the same run gives the same views.
        generator = torch.Generator().manual_seed(self.seed * 1000 + view)
        augment = self.augment if view > 0 else None
        label = f"Caching the frozen layers' output, view {view + 1} of {self.views}"
        if self.sharing is None:
            return self.features(
                images, augment=augment, generator=generator, should_stop=should_stop,
                label=label,
            )  # fmt: skip
        rank, world_size = self.sharing.rank, self.sharing.world_size
        start, stop = share_bounds(len(images), rank, world_size)
        # Each share draws its own augmentation (a generator per view and process).
        generator = torch.Generator().manual_seed((self.seed * 1000 + view) * 1000 + rank)
        part = self.features(
            images[start:stop], augment=augment, generator=generator, should_stop=should_stop,
            label=f"{label} (process {rank + 1} of {world_size})",
        )  # fmt: skip
        return self.sharing.gather_rows(part)
