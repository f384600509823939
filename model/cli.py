"""`twentyq model SUBCOMMAND`: build the table, train, evaluate, register, pin, check the pin.

Each subcommand imports what it needs when it runs (``# noqa: PLC0415``), so
`twentyq model check-pin` answers without loading torch and transformers.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from model.errors import ModelError
from model.knowledge_base import KnowledgeBaseError
from model.settings import ModelSettings


def main(argv: Sequence[str] | None = None) -> int:
    """Run one model subcommand; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["build-kb"]:
        # Every option after build-kb is the builder's own (including --help).
        from model.knowledge_base_build import main as build_main  # noqa: PLC0415

        return build_main(args[1:])
    parser = _parser()
    arguments = parser.parse_args(args)
    if arguments.command is None:
        parser.print_help()
        return 2
    handler: Callable[[argparse.Namespace, ModelSettings], int] = arguments.handler
    settings = ModelSettings()
    line = settings.describe_pin_and_store()
    print(f"twentyq model {arguments.command}: {line}", file=sys.stderr, flush=True)
    try:
        return handler(arguments, settings)
    except (ModelError, KnowledgeBaseError) as error:
        print(f"twentyq model {arguments.command}: {error}", file=sys.stderr)
        return 1


def _train(arguments: argparse.Namespace, settings: ModelSettings) -> int:
    from model.training import TrainingOptions, train_model  # noqa: PLC0415

    if arguments.pin and arguments.no_register:
        print("twentyq model train: --pin needs a registered version; drop --no-register")
        return 2
    options = TrainingOptions(
        interpreter_kind=arguments.interpreter,
        register=not arguments.no_register,
        pin=arguments.pin,
        games=arguments.games,
        progress=not arguments.json,
    )
    result = train_model(settings, options)
    if arguments.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    from model.scorecard import format_summary  # noqa: PLC0415

    print(format_summary(f"trained run {result.run_id} in {result.training_time_s:.0f} s",
                         result.summary))  # fmt: skip
    if result.pin is not None:
        print(f"\nregistered {result.pin.model_uri} (run {result.pin.run_id})")
    if result.pinned:
        print(f"pinned {result.pin.model_uri if result.pin else ''} in {settings.pin_path}")
    return 0


def _evaluate(arguments: argparse.Namespace, settings: ModelSettings) -> int:
    from model.assessment import evaluate_registered  # noqa: PLC0415

    summary = evaluate_registered(
        settings, arguments.model_uri, arguments.games, not arguments.json
    )
    if arguments.json:
        print(json.dumps(summary, indent=2))
    else:
        from model.scorecard import format_summary  # noqa: PLC0415

        print(format_summary(f"evaluated {summary['model_uri']}", summary))
    return 1 if arguments.strict and not summary["passed"] else 0


def _register(arguments: argparse.Namespace, settings: ModelSettings) -> int:
    from model.registry import register_run  # noqa: PLC0415

    pin = register_run(settings, arguments.run_id)
    print(f"registered {pin.model_uri} (run {pin.run_id})")
    return 0


def _pin(arguments: argparse.Namespace, settings: ModelSettings) -> int:
    from model.registry import find_version, write_pin  # noqa: PLC0415

    pin = find_version(settings, arguments.version)
    write_pin(pin, settings.pin_path)
    print(f"pinned {pin.model_uri} (run {pin.run_id}) in {settings.pin_path}")
    return 0


def _check_pin(arguments: argparse.Namespace, settings: ModelSettings) -> int:
    from model.registry import check_pin  # noqa: PLC0415

    pin = check_pin(settings)
    print(f"{settings.pin_path}: {pin.model_uri} (run {pin.run_id}) resolves in the registry")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twentyq model", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    build = commands.add_parser("build-kb", help="regenerate the knowledge base table",
                                add_help=False)  # fmt: skip
    build.add_argument("rest", nargs=argparse.REMAINDER)
    train = _add(commands, "train", _train, "train, evaluate, log and register a version")
    train.add_argument("--interpreter", choices=("minilm", "tiny"), default="minilm",
                       help="answer interpreter encoder (default: minilm)")  # fmt: skip
    train.add_argument("--no-register", action="store_true", help="log the run only")
    train.add_argument("--pin", action="store_true", help="pin the new version")
    _add_output_options(train)
    evaluate = _add(commands, "evaluate", _evaluate, "play the evaluation games on a version")
    source = evaluate.add_mutually_exclusive_group()
    source.add_argument("--model-uri", help="models:/NAME/VERSION (default: the pinned one)")
    source.add_argument("--pinned", action="store_true", help="evaluate the pinned version")
    evaluate.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    _add_output_options(evaluate)
    register = _add(commands, "register", _register, "register a run's model as a version")
    register.add_argument("--run-id", required=True)
    pin = _add(commands, "pin", _pin, "pin a registered version in the pin file")
    pin.add_argument("--version", required=True)
    _add(commands, "check-pin", _check_pin, "exit 0 when the pin resolves in the registry")
    return parser


def _add(
    commands: Any, name: str, handler: Callable[..., int], help_text: str
) -> argparse.ArgumentParser:
    command: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
    command.set_defaults(handler=handler)
    return command


def _add_output_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--json", action="store_true", help="print JSON instead of a summary")
    command.add_argument(
        "--games",
        type=int,
        default=None,
        help="games per scenario on random nouns (default: each noun once)",
    )
