"""Single-image latency: uploaded bytes -> probabilities, and -> probabilities + a CAM.

    python -m bench.inference_latency [--quick] [--repeats N]

Per model, after warm-up: p50 and p95 over N repeats of the whole path a Classify upload takes
(safe decode of a real JPEG, the run's preprocessing, forward pass, softmax; then the default
CAM method, `DEFAULT_CAM_METHOD`, of the predicted class at the input's size, as the Classify
page does). Models are built at their default input size; latency does not depend on the
weights' values, so MobileNetV2 uses its real ImageNet weights and the custom CNN a random init.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from core import paths
from core.config import ModelConfig
from core.imaging.model_input import make_preprocessing
from core.imaging.reader import read_image
from core.inference.explain import DEFAULT_CAM_METHOD
from core.inference.predictor import Predictor
from core.models.build import build_model
from core.models.registry import get_spec

MODELS = ("cnn_fast", "cnn_classic", "mobilenet_v2")


def sample_upload() -> bytes:
    """A real Testing JPEG when the dataset is here, else a synthetic 224 px PNG."""
    real = paths.real_dataset_dir() / "Testing" / "meningioma"
    files = sorted(real.glob("*.jpg")) if real.is_dir() else []
    if files:
        return files[0].read_bytes()
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (224, 224), dtype=np.uint8)).save(
        buffer, "PNG"
    )
    return buffer.getvalue()


def predictor_for(name: str) -> Predictor:
    """A Predictor around a freshly built model with the registry's default preprocessing."""
    spec = get_spec(name)
    pretrained = spec.supports_pretrained and name == "mobilenet_v2"
    config = ModelConfig(name, 4, in_channels=spec.default_channels, pretrained=pretrained)
    model, _ = build_model(config)
    model.eval().requires_grad_(True)
    preprocessing = make_preprocessing(
        image_size=spec.default_image_size, channels=spec.default_channels, pretrained=pretrained
    )
    return Predictor(
        "bench", ("glioma", "meningioma", "notumor", "pituitary"), preprocessing, model, spec
    )


def timings(action, repeats: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds after two warm-up calls."""
    for _ in range(2):
        action()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats, CI smoke mode")
    parser.add_argument("--repeats", type=int, default=30)
    arguments = parser.parse_args()
    repeats = 3 if arguments.quick else arguments.repeats
    upload = sample_upload()
    cam = DEFAULT_CAM_METHOD
    print(f"| model | input px | probabilities p50 / p95 ms | + {cam} p50 / p95 ms |")
    print("|---|---:|---:|---:|")
    results = {}
    for name in MODELS:
        predictor = predictor_for(name)

        def classify(predictor: Predictor = predictor) -> None:
            predictor.predict(read_image(upload, name="upload.jpg").pixels)

        def classify_and_explain(predictor: Predictor = predictor) -> None:
            pixels = read_image(upload, name="upload.jpg").pixels
            prediction = predictor.predict(pixels)
            predictor.explain(pixels, target_class=predictor.classes.index(prediction.predicted))

        plain, explained = timings(classify, repeats), timings(classify_and_explain, repeats)
        results[name] = explained[0]
        size = predictor.preprocessing.image_size
        plain_text = f"{plain[0]:.1f} / {plain[1]:.1f}"
        print(f"| {name} | {size} | {plain_text} | {explained[0]:.1f} / {explained[1]:.1f} |")
    print(
        f"summary: upload -> probabilities + {DEFAULT_CAM_METHOD} p50: mobilenet_v2 "
        f"{results['mobilenet_v2']:.0f} ms (target < 150 ms), cnn_fast {results['cnn_fast']:.0f} ms"
    )


if __name__ == "__main__":
    main()
