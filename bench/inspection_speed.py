"""How long the Inside page's layer probes and embedding projector take for a run, against the
goal of under a minute for MobileNetV2 on the 816 validation images on 2 CPU cores.

    python -m bench.inspection_speed RUN_ID [RUN_ID ...]
    python -m bench.inspection_speed --quick      # a tiny cnn_fast trained on the demo data

Each run's probes and validation embedding are recomputed (`force`), with the time of each
step (features of the training sample and of the validation images, the probes, PCA and
t-SNE) from the progress events. Prints seconds and the ratio to the 60-second goal (below 1:
met). Absolute times are this machine's.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import defaultdict

from core import paths
from core.data import synthetic
from core.events import PROGRESS, Events, StageProgress
from core.inspection.probes import embedding, layer_probes
from core.training.fit import fit
from core.training.request import make_request

GOAL_SECONDS = 60.0


def timed_events() -> tuple[Events, dict[str, float]]:
    """An event bus that adds up the time between progress reports, per stage."""
    spent: dict[str, float] = defaultdict(float)
    last = {"at": time.perf_counter(), "stage": "start"}

    def on_progress(stage: StageProgress) -> None:
        now = time.perf_counter()
        spent[last["stage"]] += now - last["at"]
        last["at"], last["stage"] = now, stage.message.split(":")[0]

    events = Events()
    events.add_callback(PROGRESS, on_progress)
    return events, spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", metavar="RUN_ID")
    parser.add_argument("--quick", action="store_true", help="a tiny run on the demo data")
    arguments = parser.parse_args()
    runs = list(arguments.runs)
    if arguments.quick:  # its throwaway run goes to a temporary folder, not checkpoints/
        os.environ[paths.CHECKPOINTS_ENV] = tempfile.mkdtemp(prefix="btw-bench-")
        root = synthetic.generate_demo_dataset(paths.demo_dataset_dir())
        request = make_request(data_root=root, model="cnn_fast", epochs=1, image_size=64)
        runs = [fit(request).run_id]
    if not runs:
        parser.error("name a run, or use --quick")
    for run_id in runs:
        events, spent = timed_events()
        started = time.perf_counter()
        probes = layer_probes(run_id, force=True, events=events)
        probes_seconds = time.perf_counter() - started
        frame = embedding(run_id, "val", force=True, events=events)
        total = time.perf_counter() - started
        print(f"{run_id}: {probes['val_images']} validation images, {len(probes['stages'])} stages")
        print(f"  probes {probes_seconds:.1f} s, embedding of {len(frame)} images "
              f"{total - probes_seconds:.1f} s, together {total:.1f} s; "
              f"ratio to the {GOAL_SECONDS:.0f} s goal: {total / GOAL_SECONDS:.2f}")  # fmt: skip
        for step, seconds in sorted(spent.items(), key=lambda item: -item[1])[:6]:
            print(f"    {step:<40} {seconds:6.1f} s")


if __name__ == "__main__":
    main()
