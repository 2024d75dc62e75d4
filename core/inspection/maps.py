"""Feature maps of one image at every stage: the most active channels, with each stage's size
and receptive field."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.imaging.model_input import prepare_images
from core.inference.predictor import Predictor
from core.inspection.layers import StageInfo, architecture_fields, stage_outputs, strongest_channels
from core.inspection.render import map_tiles, stack_rows

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


def feature_maps(
    predictor: Predictor, image: np.ndarray, per_stage: int = CHANNELS_PER_STAGE
) -> list[StageMaps]:
    """Every stage's `per_stage` most active channels for a decoded image of any size."""
    preprocessing = predictor.preprocessing
    x = prepare_images([image], preprocessing)
    with predictor.lock:
        outputs = stage_outputs(predictor.model, predictor.spec.name, x.to(predictor.device))
    fields = architecture_fields(
        predictor.spec.name, preprocessing.channels, preprocessing.image_size
    )
    maps = []
    for output, info in zip(outputs, fields, strict=True):
        channels = strongest_channels(output, per_stage)
        maps.append(StageMaps(info, channels, map_tiles(output, channels)))
    return maps


def feature_strip(maps: list[StageMaps]) -> np.ndarray:
    """Every stage's tiles, one row per stage (the CLI's feature-maps.png)."""
    return stack_rows([stage.tiles for stage in maps])
