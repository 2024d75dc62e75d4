"""Feature maps of one image at every stage: the most active channels, with each stage's size
and receptive field."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.imaging.model_input import prepare_images
from core.inference.predictor import Predictor
from core.inspection.layers import StageInfo, architecture_fields, stage_outputs, strongest_channels
from core.inspection.render import GAP, TILE, map_tiles, stack_rows

CHANNELS_PER_STAGE = 8


@dataclass(frozen=True)
class StageMaps:
    """One stage's most active channels for one image, drawn side by side."""

    info: StageInfo
    channels: list[int]
    tiles: np.ndarray = field(repr=False)  # RGB uint8

    @property
    def caption(self) -> str:
        """'stage 3 (Sequential): 64 channels, 16 x 16, stride 8, sees 31 x 31 pixels'."""
        info = self.info
        return (
            f"stage {info.index} ({info.name}): {info.channels} channels, {info.height} x "
            f"{info.width}, stride {info.stride}, each unit sees {info.receptive_field} x "
            f"{info.receptive_field} input pixels"
        )

    def leading(self, count: int) -> StageMaps:
        """The same stage with only its `count` strongest channels (they come first)."""
        width = max(0, min(count, len(self.channels)) * (TILE + GAP) - GAP)
        return StageMaps(self.info, self.channels[:count], self.tiles[:, :width])


def stage_fields(predictor: Predictor) -> tuple[StageInfo, ...]:
    """The run's stages with their sizes and receptive fields (no forward pass of the run)."""
    preprocessing = predictor.preprocessing
    return architecture_fields(
        predictor.spec.name, preprocessing.channels, preprocessing.image_size
    )


def feature_maps(
    predictor: Predictor,
    image: np.ndarray,
    per_stage: int = CHANNELS_PER_STAGE,
    wider: dict[int, int] | None = None,
) -> list[StageMaps]:
    """Every stage's `per_stage` most active channels for a decoded image of any size, in one
    forward pass; `wider` gives some stages (by index) more channels."""
    x = prepare_images([image], predictor.preprocessing)
    with predictor.lock:
        outputs = stage_outputs(predictor.model, predictor.spec.name, x.to(predictor.device))
    maps = []
    for output, info in zip(outputs, stage_fields(predictor), strict=True):
        channels = strongest_channels(output, (wider or {}).get(info.index, per_stage))
        maps.append(StageMaps(info, channels, map_tiles(output, channels)))
    return maps


def feature_strip(maps: list[StageMaps]) -> np.ndarray:
    """Every stage's tiles, one row per stage (the CLI's feature-maps.png)."""
    return stack_rows([stage.tiles for stage in maps])
