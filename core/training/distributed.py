"""One run trained by several processes: DistributedDataParallel (DDP) under torchrun.

`torchrun --nproc-per-node N -m core train ...` starts N copies of the `train` command; each
finds its place in torchrun's environment (`torchrun_launch`) and joins the process group
(`distributed_session`: NCCL, one GPU per process; gloo on the CPU, the cores shared out).
`fit()` then trains one run with them (`DistributedTraining`):

- Batches stay global: every process draws the same permutation per epoch from the run's seed
  and trains on every world_size-th image of each global batch; `batch_size` and the learning
  rate are the global batch's. Augmentation draws from a generator per process (seed, rank).
- DDP averages the gradients of losses scaled so that the average is the global batch's mean.
- Validation is computed once: each process evaluates a shard, the logits are gathered in
  order, so every process sees the same loss, best epoch and early stop.
- Only rank 0 writes the run folder and reports progress (the others: `SilentRunWriter`);
  data preparation runs on each machine's first process first, so caches are built once.
- SIGTERM (torchrun stopping its workers after Ctrl+C or a dead worker) and a lost peer end the
  run as interrupted; collectives time out after COLLECTIVE_TIMEOUT instead of hanging.

A single process (no torchrun, or WORLD_SIZE 1) never comes here.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from core.runs.writer import RunWriter, SilentRunWriter
from core.training.loops import (
    BatchShard,
    EpochStats,
    Evaluation,
    StepSettings,
    TrainingInterrupted,
    evaluate,
    evaluation_of,
    train_one_epoch,
)

Result = TypeVar("Result")

# Long enough for rank 0 to write a checkpoint while the others wait at the next collective;
# short enough that a silent process ends the run in minutes (defaults: NCCL 10, gloo 30).
COLLECTIVE_TIMEOUT = timedelta(seconds=120)
# Waiting for the first process to index, audit and decode a dataset it sees for the first time
# (minutes for the real dataset on 2 cores); a dead process ends the wait at once anyway.
PREPARATION_TIMEOUT = timedelta(hours=1)
# How gloo and NCCL word a collective whose peer is gone (a plain RuntimeError in torch 2.14).
_LOST_PEER_MARKERS = ("gloo", "nccl", "connection reset", "connection closed", "timed out")


@dataclass(frozen=True)
class Launch:
    """Where torchrun placed this process."""

    rank: int
    local_rank: int
    world_size: int
    local_world_size: int


def torchrun_launch(environ: Mapping[str, str] | None = None) -> Launch | None:
    """This process's place from torchrun's variables, or None for a single process."""
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" not in environ:
        return None
    try:
        world_size = int(environ["WORLD_SIZE"])
        rank, local_rank = int(environ.get("RANK", "0")), int(environ.get("LOCAL_RANK", "0"))
        local_world_size = int(environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    except ValueError:
        raise ValueError("torchrun's WORLD_SIZE, RANK or LOCAL_RANK is not a number") from None
    if world_size <= 1:
        return None
    if not (0 <= rank < world_size and 0 <= local_rank < local_world_size <= world_size):
        raise ValueError(
            f"inconsistent torchrun environment: RANK {rank}, LOCAL_RANK {local_rank}, "
            f"LOCAL_WORLD_SIZE {local_world_size}, WORLD_SIZE {world_size}"
        )
    return Launch(rank, local_rank, world_size, local_world_size)


def available_cores() -> int:
    """CPU cores this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux only
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def threads_per_process(cores: int, local_world_size: int) -> int:
    """Each of a machine's processes gets an even share of its cores (at least one thread)."""
    return max(1, cores // max(1, local_world_size))


def process_seed(seed: int, rank: int) -> int:
    """A seed of its own for each process (augmentation, dropout), from the run's seed."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


def check_world_fits(world_size: int, *, train_images: int, val_images: int, batch: int) -> None:
    """ValueError (one line) when `world_size` processes cannot share the run's images."""
    for count, what in (
        (train_images, "training images"),
        (val_images, "validation images"),
        (batch, "images in a batch (the batch size is global)"),
    ):
        if count < world_size:
            raise ValueError(
                f"{world_size} training processes but only {count} {what}: every process needs "
                "at least one; start fewer processes or use more images"
            )


def is_lost_peer(error: BaseException) -> bool:
    """Whether a collective failed because another process is gone or silent."""
    if isinstance(error, dist.DistError):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and any(mark in text for mark in _LOST_PEER_MARKERS)


@contextlib.contextmanager
def lost_peers_interrupt() -> Iterator[None]:
    """Turn a collective's failure over a lost process into TrainingInterrupted."""
    try:
        yield
    except RuntimeError as error:
        if not is_lost_peer(error):
            raise
        # "[.../gloo/.../pair.cc:545] Read error [...]: Connection reset by peer. This is...":
        # its first sentence, without the source location.
        line = (str(error).strip().splitlines() or [""])[0]
        cause = line.split("] ", 1)[-1].split(". ", 1)[0][:160]
        raise TrainingInterrupted(
            f"another training process stopped or stopped answering ({cause})"
        ) from error


class StopSignals:
    """SIGTERM, torchrun's way to stop its workers (Ctrl+C on the launcher, a dead worker).

    While the run trains it becomes TrainingInterrupted, so the run's terminal status is
    written; while those last files are written it waits; elsewhere it exits the process.
    """

    def __init__(self) -> None:
        self.mode, self.received = "exit", False

    def __call__(self, signum: int, _frame: object) -> None:
        self.received = True
        if self.mode == "train":
            self.mode = "finish"
            raise TrainingInterrupted(
                f"stopped by {signal.Signals(signum).name}: torchrun ends every process when "
                "it is interrupted (Ctrl+C) or when one of them dies"
            )
        if self.mode == "exit":
            raise SystemExit(128 + signum)

    @contextlib.contextmanager
    def training(self) -> Iterator[None]:
        """While inside, a SIGTERM interrupts training; after it, it waits for the exit."""
        self.mode = "train"
        try:
            yield
        finally:
            self.mode = "finish"

    def finished(self) -> None:
        """The run's files are written: a SIGTERM exits again."""
        self.mode = "exit"


def _attempt(work: Callable[[], Result]) -> tuple[Result | None, Exception | None]:
    """(result, None), or (None, the error) when `work` failed."""
    try:
        return work(), None
    except Exception as error:
        return None, error


def _picklable(error: BaseException) -> BaseException:
    """The error itself when it can travel to another process, else its text."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


@dataclass
class DistributedContext:
    """This process in the process group: its place, backend, device and helper groups."""

    launch: Launch
    backend: str
    device: torch.device
    object_group: Any  # gloo: Python objects and CPU tensors (the default group on the CPU)
    preparation_group: Any  # gloo with PREPARATION_TIMEOUT: waiting for data preparation
    stop_signals: StopSignals = field(default_factory=StopSignals)

    @property
    def rank(self) -> int:
        """This process's global rank."""
        return self.launch.rank

    @property
    def world_size(self) -> int:
        """How many processes train the run."""
        return self.launch.world_size

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes the run folder and reports progress."""
        return self.launch.rank == 0

    def describe(self, batch_size: int) -> dict[str, Any]:
        """config.json's `distributed` section."""
        return {
            "world_size": self.world_size,
            "processes_per_machine": self.launch.local_world_size,
            "backend": self.backend,
            "batch": "global",
            "per_process_batch": batch_size / self.world_size,
        }

    def gather_objects(self, value: Any, group: Any = None) -> list[Any]:
        """Every process's `value`, in rank order, on every process."""
        gathered: list[Any] = [None] * self.world_size
        with lost_peers_interrupt():
            dist.all_gather_object(gathered, value, group=group or self.object_group)
        return gathered

    def gather_rows(self, part: torch.Tensor) -> torch.Tensor:
        """Every process's rows (same trailing shape and dtype), concatenated in rank order."""
        sizes = self.gather_objects(len(part))
        padded = torch.zeros((max(sizes), *part.shape[1:]), dtype=part.dtype)
        padded[: len(part)] = part
        buffers = [torch.empty_like(padded) for _ in range(self.world_size)]
        with lost_peers_interrupt():
            dist.all_gather(buffers, padded, group=self.object_group)
        return torch.cat([buffer[:size] for buffer, size in zip(buffers, sizes, strict=True)])

    def check_same(self, value: Any, what: str) -> None:
        """ValueError on every process unless every process holds the same `value`."""
        if len({repr(each) for each in self.gather_objects(value)}) > 1:
            raise ValueError(f"the training processes do not agree on {what}")

    def main_first(self, work: Callable[[], Result]) -> Result:
        """`work` on each machine's first process, then on the others, which then find the
        caches it built; a failure there is raised on every process."""
        leader = self.launch.local_rank == 0
        result, failure = _attempt(work) if leader else (None, None)
        outcomes = self.gather_objects(
            _picklable(failure) if failure else None, self.preparation_group
        )
        first = failure or next((outcome for outcome in outcomes if outcome is not None), None)
        if first is not None:
            raise first
        return result if leader else work()  # type: ignore[return-value]

    def create_writer(self, create: Callable[[], RunWriter]) -> RunWriter:
        """Rank 0 creates the run folder; the others learn where it is and write nothing."""
        writer, failure = _attempt(create) if self.is_main else (None, None)
        shared: list[Any] = [_picklable(failure) if failure else writer and writer.path]
        with lost_peers_interrupt():
            dist.broadcast_object_list(shared, src=0, group=self.object_group)
        if isinstance(shared[0], BaseException):
            raise failure or shared[0]
        return writer or SilentRunWriter(Path(shared[0]))

    def combine(self, stats: EpochStats) -> EpochStats:
        """The epoch's statistics over every process: sums of loss and correct over all images."""
        rows = self.gather_objects(
            (stats.loss * stats.images, round(stats.accuracy * stats.images), stats.images,
             stats.seconds)
        )  # fmt: skip
        images = sum(row[2] for row in rows)
        return EpochStats(
            sum(row[0] for row in rows) / max(images, 1),
            sum(row[1] for row in rows) / max(images, 1),
            images,
            max(row[3] for row in rows),  # the processes step together: the slowest's time
        )


@dataclass
class DistributedTraining:
    """What fit() does differently with several processes: DDP steps on shards of global
    batches, statistics summed over processes, validation sharded and gathered in order."""

    context: DistributedContext
    seed: int
    augment_generator: torch.Generator = field(init=False)
    _wrapped: dict[int, DistributedDataParallel] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.augment_generator = torch.Generator().manual_seed(
            process_seed(self.seed, self.context.rank)
        )

    def seed_dropout(self) -> None:
        """Dropout draws from the global generator: a seed of its own per process, so that
        processes do not drop the same units of their different images."""
        torch.manual_seed(process_seed(self.seed, self.context.rank))

    def wrap(self, network: nn.Module) -> DistributedDataParallel:
        """The DDP wrapper of `network` (made once: it broadcasts rank 0's weights)."""
        if id(network) not in self._wrapped:
            device = self.context.device
            with lost_peers_interrupt():
                self._wrapped[id(network)] = DistributedDataParallel(
                    network, device_ids=[device.index] if device.type == "cuda" else None
                )
        return self._wrapped[id(network)]

    def train_one_epoch(
        self, network: nn.Module, images: torch.Tensor, labels: torch.Tensor, **options: Any
    ) -> EpochStats:
        """`core.training.loops.train_one_epoch` on this process's shards, through DDP."""
        shard = BatchShard(self.context.rank, self.context.world_size, self.augment_generator)
        wrapped = self.wrap(network)
        with lost_peers_interrupt():
            stats = train_one_epoch(wrapped, images, labels, shard=shard, **options)
        return self.context.combine(stats)

    def validation_shard(self, images: torch.Tensor) -> torch.Tensor:
        """The validation images (or their cached features) this process evaluates."""
        return images[self.context.rank :: self.context.world_size]

    def evaluate(
        self,
        network: nn.Module,
        shard_images: torch.Tensor,
        labels: torch.Tensor,
        *,
        loss_function: nn.Module,
        settings: StepSettings,
        should_stop: Callable[[], bool],
    ) -> Evaluation:
        """Every validation image's logits, each computed by one process, gathered in order."""
        rank, world_size = self.context.rank, self.context.world_size
        mine = evaluate(
            network, shard_images, labels[rank::world_size], loss_function=loss_function,
            settings=settings, should_stop=should_stop,
        )  # fmt: skip
        pieces = self.context.gather_objects(mine.logits)
        logits = np.empty((len(labels), pieces[0].shape[1]), dtype=np.float32)
        for index, piece in enumerate(pieces):
            logits[index::world_size] = piece
        return evaluation_of(torch.from_numpy(logits), labels.cpu(), loss_function)


@contextlib.contextmanager
def distributed_session(launch: Launch) -> Iterator[DistributedContext]:
    """Join torchrun's process group for one run, with SIGTERM handled; leave it at the end."""
    if torch.cuda.is_available():
        if torch.cuda.device_count() < launch.local_world_size:
            raise ValueError(
                f"{launch.local_world_size} processes on this machine but "
                f"{torch.cuda.device_count()} GPUs: start one process per GPU"
            )
        backend, device = "nccl", torch.device("cuda", launch.local_rank)
        torch.cuda.set_device(device)
    else:
        backend, device = "gloo", torch.device("cpu")
        # Two processes with every core each would fight over them (torchrun's default of one
        # thread each leaves cores idle on a machine with more cores than processes).
        torch.set_num_threads(threads_per_process(available_cores(), launch.local_world_size))
    stop_signals = StopSignals()
    previous = signal.signal(signal.SIGTERM, stop_signals)
    try:
        dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
        try:
            object_group = (
                dist.group.WORLD
                if backend == "gloo"
                else dist.new_group(backend="gloo", timeout=COLLECTIVE_TIMEOUT)
            )
            preparation_group = dist.new_group(backend="gloo", timeout=PREPARATION_TIMEOUT)
            yield DistributedContext(
                launch, backend, device, object_group, preparation_group, stop_signals
            )
        finally:
            dist.destroy_process_group()
    finally:
        signal.signal(signal.SIGTERM, previous)
