"""CLI commands `models` and `train` (registered by core.cli)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from core.config import AUGMENT_PARTS, augmentation  # plain dataclasses: no torch
from core.training.recipes import (
    AUTO,
    OPTION_NAMES,
    RECIPE_CHOICES,
    TrainingOptions,
    recipe_options,
)

if TYPE_CHECKING:
    from core.training.distributed import Launch
    from core.training.fit import FitResult
    from core.training.request import TrainingRequest

# The training stack (torch, torchvision, the model zoo) is imported inside the commands that
# use it, so that `python -m core dataset|audit` start in a fraction of the time.


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2))


def command_models(arguments: argparse.Namespace) -> int:
    """List the model registry, with whether ImageNet weights are available here."""
    from core.models.choices import model_choices

    choices = model_choices()
    if arguments.json:
        _print_json(
            [
                {**asdict(choice), "imagenet_weights_available": choice.weights_available}
                for choice in choices
            ]
        )
        return 0
    for choice in choices:
        if not choice.supports_pretrained:
            weights = "from scratch only"
        else:
            weights = (
                "ImageNet weights here" if choice.weights_available else "no ImageNet weights here"
            )
        print(f"{choice.name:20s} {choice.parameters / 1e6:6.2f} M  {weights}")
        print(f"{'':20s} {choice.description}")
    return 0


def request_from_arguments(arguments: argparse.Namespace) -> TrainingRequest:
    """A TrainingRequest from the `train` command's options (validated): the options given,
    on top of the recipe chosen with --recipe."""
    from core.data.locate import resolve_dataset_dir
    from core.models.registry import get_spec
    from core.training.request import make_request

    changes = {
        name: getattr(arguments, name)
        for name in OPTION_NAMES
        if getattr(arguments, name, None) is not None
    }
    if arguments.augment is not None:  # the parts named, at the recipe's strengths
        start = recipe_options(get_spec(arguments.model).name, arguments.recipe)
        changes["augment"] = augmentation(arguments.augment, like=start.augment)
    return make_request(
        data_root=resolve_dataset_dir(arguments.data),
        model=arguments.model,
        recipe=arguments.recipe,
        name=arguments.name,
        **changes,
    )


def command_train(arguments: argparse.Namespace) -> int:
    """Train one model; Ctrl+C cancels cleanly (the run is kept, marked cancelled). Under
    torchrun with more than one process, the processes train the run together (DDP)."""
    from core.training.distributed import torchrun_launch

    launch = torchrun_launch()
    if launch is not None:
        return _train_distributed(arguments, launch)
    from core.cli.progress import training_events
    from core.training.fit import fit

    request = request_from_arguments(arguments)
    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        events = training_events(not arguments.quiet)
        result = fit(request, events=events, cancel=cancel)
    finally:
        signal.signal(signal.SIGINT, previous)
    return _report(arguments, result, evaluate=arguments.evaluate)


def _train_distributed(arguments: argparse.Namespace, launch: Launch) -> int:
    """One process of a torchrun launch: rank 0 writes, reports and evaluates; the others
    train silently, and leave a bad option or dataset for rank 0 to report."""
    import torch

    from core.cli.progress import training_events
    from core.data.discovery import DatasetError
    from core.imaging.pixels import ImageReadError
    from core.training.distributed import available_cores, distributed_session
    from core.training.fit import fit
    from core.training.loops import TrainingInterrupted

    main = launch.rank == 0
    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        request = request_from_arguments(arguments)
        with distributed_session(launch) as context:
            events = training_events(main and not arguments.quiet)
            result = fit(request, events=events, cancel=cancel, distributed=context)
            stopped = context.stop_signals.received
    # What core.cli.main reports as one line (importing its list here would be a circle):
    # every process meets the same bad input, and one line of it is enough.
    except (DatasetError, ImageReadError, ValueError, OSError):
        if main:
            raise
        raise SystemExit(2) from None
    except TrainingInterrupted as error:  # a process was lost before the run folder existed
        if main:
            print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, previous)
    if not main:
        return 0 if result.status == "completed" else 1
    if not torch.cuda.is_available():
        torch.set_num_threads(available_cores())  # the other processes are done: every core
    return _report(arguments, result, evaluate=arguments.evaluate and not stopped)


def _report(arguments: argparse.Namespace, result: FitResult, *, evaluate: bool) -> int:
    """Evaluate a completed run (unless told not to), print how it ended; the exit status."""
    evaluation = None
    if result.status == "completed" and evaluate:
        from core.evaluation.evaluate import STRICTER_SPLITS, evaluate_run, split_summary

        stored = evaluate_run(result.run_id)
        evaluation = {split: split_summary(stored, split) for split in ("test", *STRICTER_SPLITS)}
    if arguments.json:
        _print_json(asdict(result) | {"evaluation": evaluation})
    else:
        accuracy = f"{result.val_accuracy:.4f}" if result.val_accuracy is not None else "n/a"
        print(
            f"run {result.run_id} {result.status}: {result.epochs} epochs in "
            f"{result.train_seconds:.1f}s, best epoch {result.best_epoch}, "
            f"val accuracy {accuracy}, weights: {result.weights_source}"
        )
        if result.message and result.status != "completed":
            print(result.message)
        print(f"run folder: {result.run_dir}")
        for split, summary in (evaluation or {}).items():
            if summary:
                low, high = summary["accuracy_ci"]
                print(
                    f"{split.replace('_', ' ')} accuracy {summary['accuracy']:.4f} "
                    f"[{low:.4f}, {high:.4f}] on {summary['n']} images"
                )
    return 0 if result.status == "completed" else 1


def _default(name: str) -> str:
    """Help text tail: where an option's value comes from when it is not given."""
    return f"(default: the model's recipe, else {getattr(TrainingOptions(), name)})"


def add_training_commands(commands: argparse._SubParsersAction) -> None:
    """Register `models` and `train` on the CLI's subcommand parser."""
    models_parser = commands.add_parser("models", help="list the models that can be trained")
    models_parser.add_argument("--json", action="store_true", help="print one JSON list")
    models_parser.set_defaults(handler=command_models)

    train = commands.add_parser(
        "train",
        help="train a model and store it as a run",
        description="Train a model and store it as a run. Every option starts from the model's "
        "measured recipe (the Train page's defaults) when it has one, else from the plain "
        "defaults; --recipe none starts from the plain defaults.",
    )
    train.add_argument("--data", help="dataset folder (default: BTW_DATA_DIR, data/, the demo)")
    train.add_argument("--model", required=True, help="a name from `python -m core models`")
    train.add_argument(
        "--recipe",
        choices=RECIPE_CHOICES,
        default=AUTO,
        help="auto: the model's measured recipe where it has one (default); none: plain defaults",
    )
    train.add_argument(
        "--pretrained",
        dest="use_pretrained",
        action=argparse.BooleanOptionalAction,
        help=f"start from ImageNet weights {_default('use_pretrained')}",
    )
    train.add_argument("--freeze", help=f"none | head | top-N {_default('freeze')}")
    train.add_argument("--epochs", type=int, help=_default("epochs"))
    train.add_argument(
        "--image-size", type=int, help="pixels (default: the recipe's, else the model's)"
    )
    train.add_argument("--batch-size", type=int, help=_default("batch_size"))
    train.add_argument("--lr", type=float, help=f"learning rate {_default('lr')}")
    train.add_argument(
        "--backbone-lr-scale",
        type=float,
        help=f"pretrained layers that train use lr x this {_default('backbone_lr_scale')}",
    )
    train.add_argument("--optimizer", choices=["adam", "adamw"], help=_default("optimizer"))
    train.add_argument(
        "--schedule", choices=["cosine", "onecycle", "constant"], help=_default("schedule")
    )
    train.add_argument("--label-smoothing", type=float, help=_default("label_smoothing"))
    train.add_argument(
        "--class-weights",
        action=argparse.BooleanOptionalAction,
        help=f"weight the loss by 1/frequency {_default('class_weights')}",
    )
    train.add_argument(
        "--augment",
        nargs="*",
        choices=AUGMENT_PARTS,
        metavar="PART",
        help=f"augmentation to use, from: {' '.join(AUGMENT_PARTS)} (default: the recipe's, "
        "else all; --augment alone = none)",
    )
    train.add_argument("--no-augment", dest="augment", action="store_const", const=[])
    train.add_argument(
        "--patience",
        type=int,
        help="early stopping: epochs without a lower validation loss before stopping, 0 = off "
        + _default("patience"),
    )
    train.add_argument("--precision", choices=["auto", "fp32", "bf16"], help=_default("precision"))
    train.add_argument(
        "--cache-frozen",
        action=argparse.BooleanOptionalAction,
        help="compute frozen layers once and cache their output (--no-cache-frozen: every "
        f"epoch) {_default('cache_frozen')}",
    )
    train.add_argument(
        "--frozen-views", type=int, help=f"cached views of each image {_default('frozen_views')}"
    )
    train.add_argument("--seed", type=int, help=_default("seed"))
    train.add_argument("--name", help="the run's display name (default: its id until renamed)")
    train.add_argument(
        "--subset",
        dest="subset_per_class",
        type=int,
        metavar="N",
        help="N training images per class (smoke runs; default: all)",
    )
    train.add_argument(
        "--no-evaluate",
        dest="evaluate",
        action="store_false",
        help="skip the evaluation on the official and duplicate-free test splits after training",
    )
    train.add_argument("--quiet", action="store_true", help="no progress on stderr")
    train.add_argument("--json", action="store_true", help="print one JSON object at the end")
    train.set_defaults(handler=command_train)
