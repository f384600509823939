"""`twentyq COMMAND ...`: dispatch to the part that owns the command.

Each command lives in its own package and is imported only when run, so
`twentyq play` on an ambassador's machine never imports the worker's or the
model's dependencies.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from collections.abc import Callable, Sequence

# command -> ("module:function", one-line help). Each function takes argv and returns an exit code.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("twentyq.demo:main", "run the whole pipeline locally and print a summary"),
    "worker": ("worker.cli:main", "run a Celery worker serving the pinned model"),
    "play": ("producer.cli:play_main", "play a game in the terminal through the queue"),
    "simulate": ("producer.cli:simulate_main", "play simulated games through the queue"),
    "export": ("monitoring.cli:export_main", "run the export sidecar on twentyq.export"),
    "drift": ("monitoring.cli:drift_main", "compare production outputs with the reference"),
    "model": ("model.cli:main", "build, train, evaluate, register and pin the model"),
    "bench": ("twentyq.bench:main", "measure throughput and latency side by side"),
    "doctor": ("twentyq.doctor:main", "check Python, torch, broker, registry, pin and ports"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: twentyq COMMAND [ARGS...] | --version", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_text}" for name, (_, help_text) in COMMANDS.items()]
    lines += ["", "Run `twentyq COMMAND --help` for a command's options."]
    return "\n".join(lines)


def _version() -> str:
    try:
        return importlib.metadata.version("twentyq")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed; run `make install`)"


def _resolve(target: str) -> Callable[[Sequence[str]], int]:
    module_name, function_name = target.split(":")
    function: Callable[[Sequence[str]], int] = getattr(
        importlib.import_module(module_name), function_name
    )
    return function


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command named by the first argument."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0 if args else 2
    if args[0] in {"-V", "--version"}:
        print(f"twentyq {_version()}")
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"twentyq: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    return _resolve(COMMANDS[command][0])(rest)


if __name__ == "__main__":
    raise SystemExit(main())
