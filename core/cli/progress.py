"""Progress on stderr for the CLI: tqdm bars that listen to core's event bus.

On a terminal every long step (indexing, decoding, the audit, caching frozen layers,
evaluating) gets a bar, and training a bar per epoch; elsewhere (a log file, CI) each step
prints one line when it ends and each epoch its summary, so logs stay readable.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from core.events import PROGRESS, Events, StageProgress

if TYPE_CHECKING:  # the training stack (torch) stays out of `dataset` and `audit`
    from core.training.progress import BatchEvent


def _interactive() -> bool:
    return sys.stderr.isatty()


class StageBars:
    """A 'progress' subscriber: one bar per long step, closed when the step ends."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None
        self.key: tuple[str, int, str] | None = None

    def __call__(self, stage: StageProgress) -> None:
        label = stage.message.split(":", 1)[0]
        if not _interactive():
            if stage.finished:
                print(stage.message, file=sys.stderr, flush=True)
            return
        key = (stage.stage, stage.total, label)
        if self.bar is None or key != self.key:
            self.close()
            self.bar = tqdm(total=stage.total, desc=label, file=sys.stderr, leave=True)
            self.key = key
        self.bar.update(stage.done - self.bar.n)
        if stage.finished:
            self.close()

    def close(self) -> None:
        """Finish the current bar, if any."""
        if self.bar is not None:
            self.bar.close()
            self.bar, self.key = None, None


class EpochBars:
    """'batch' and 'epoch' subscribers: a bar per epoch, then the epoch's summary line."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def on_batch(self, event: BatchEvent) -> None:
        """Move the epoch's bar (terminals only)."""
        if not _interactive():
            return
        if self.bar is None:
            self.bar = tqdm(
                total=event.total_batches,
                desc=f"epoch {event.epoch}/{event.total_epochs}",
                unit="batch",
                file=sys.stderr,
                leave=False,
            )
        self.bar.update(event.batch - self.bar.n)
        self.bar.set_postfix(loss=f"{event.loss:.3f}", img_s=f"{event.images_per_second:.0f}")

    def on_epoch(self, record: dict[str, Any]) -> None:
        """Close the epoch's bar and print its summary."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        tqdm.write(
            f"epoch {record['epoch']}: train loss {record['train_loss']:.4f} "
            f"acc {record['train_accuracy']:.3f} | val loss {record['val_loss']:.4f} "
            f"acc {record['val_accuracy']:.3f} | {record['images_per_second']:.0f} img/s "
            f"| {record['elapsed_seconds']:.0f}s",
            file=sys.stderr,
        )


def progress_events(enabled: bool = True) -> Events:
    """An event bus that shows long steps on stderr (or a silent one when not enabled)."""
    events = Events()
    if enabled:
        events.add_callback(PROGRESS, StageBars())
    return events


def training_events(enabled: bool = True) -> Events:
    """progress_events plus a bar per epoch, the epochs' summaries and training notices."""
    events = progress_events(enabled)
    if enabled:
        epochs = EpochBars()
        events.add_callback("batch", epochs.on_batch)
        events.add_callback("epoch", epochs.on_epoch)
        events.add_callback("message", lambda message: tqdm.write(message, file=sys.stderr))
    return events
