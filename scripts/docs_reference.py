"""MkDocs hook: the reference pages' tables, generated from the code at every build.

A page asks for a generated block with a marker line, e.g. ``<!-- reference:settings -->``;
the build replaces it. Settings come from the pydantic-settings classes, the CLI from each
command's ``--help``, the message schemas from the pydantic models, the error list from
each package's ``errors`` module, so none of them can drift from the code. An unknown
marker, or a command whose ``--help`` fails, fails the build.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import annotated_types
from pydantic import AliasChoices, BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
_MARKER = re.compile(r"^<!-- reference:([a-z-]+) -->$", re.MULTILINE)

SETTINGS_CLASSES = (
    "producer.broker:BrokerSettings",
    "producer.settings:ProducerSettings",
    "worker.settings:WorkerSettings",
    "monitoring.settings:MonitoringSettings",
    "model.settings:ModelSettings",
)
MESSAGE_MODELS = ("Turn", "Guess", "GameOutcome", "DeadLetter")
ERROR_MODULES = ("producer.errors", "worker.errors", "monitoring.errors", "model.errors")
# (arguments after `twentyq`, heading). `twentyq worker` hands its options to Celery.
CLI_COMMANDS: tuple[tuple[tuple[str, ...], str], ...] = (
    ((), "twentyq"),
    (("demo",), "twentyq demo"),
    (("play",), "twentyq play"),
    (("simulate",), "twentyq simulate"),
    (("export",), "twentyq export"),
    (("drift",), "twentyq drift"),
    (("model",), "twentyq model"),
    (("model", "train"), "twentyq model train"),
    (("model", "evaluate"), "twentyq model evaluate"),
    (("model", "register"), "twentyq model register"),
    (("model", "pin"), "twentyq model pin"),
    (("model", "check-pin"), "twentyq model check-pin"),
    (("model", "build-kb"), "twentyq model build-kb"),
    (("bench",), "twentyq bench"),
    (("doctor",), "twentyq doctor"),
)


def _load(target: str) -> Any:
    module_name, name = target.split(":")
    return getattr(importlib.import_module(module_name), name)


def _variables(name: str, field: FieldInfo, prefix: str) -> str:
    alias = field.validation_alias
    names = alias.choices if isinstance(alias, AliasChoices) else [prefix + name.upper()]
    return " or ".join(f"`{choice}`" for choice in names)


def _default(field: FieldInfo, defaults: dict[str, Any]) -> str:
    if field.default_factory is not None:
        factory: Callable[..., Any] = field.default_factory
        try:
            takes_data = len(inspect.signature(factory).parameters) == 1
        except ValueError:  # a builtin such as dict has no signature, and takes no data
            takes_data = False
        value = factory(defaults) if takes_data else factory()
        return f"`{value}` (derived)" if takes_data else f"`{value}`"
    if field.default is PydanticUndefined:
        return "**required**"
    if field.default is None:
        return "unset"
    if field.default == "":
        return "empty"
    value = field.default.value if isinstance(field.default, Enum) else field.default
    return f"`{json.dumps(value) if isinstance(value, (dict, list)) else value}`"


_BOUNDS = {
    annotated_types.Ge: ("ge", "≥"),
    annotated_types.Gt: ("gt", ">"),
    annotated_types.Le: ("le", "≤"),
    annotated_types.Lt: ("lt", "<"),
}


def _constraints(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        for kind, (attribute, symbol) in _BOUNDS.items():
            if isinstance(item, kind):
                parts.append(f"{symbol} {getattr(item, attribute)}")
    annotation = field.annotation
    if get_origin(annotation) is Literal:
        parts.append("one of " + ", ".join(f"`{choice}`" for choice in get_args(annotation)))
    return f" ({'; '.join(parts)})" if parts else ""


def _escaped(text: str) -> str:
    return text.replace("|", "\\|")


def render_settings() -> str:
    """One table per deployable: every variable, its default and what it means."""
    sections = []
    for target in SETTINGS_CLASSES:
        settings_class = _load(target)
        prefix = str(settings_class.model_config.get("env_prefix", ""))
        fields: dict[str, FieldInfo] = settings_class.model_fields
        defaults = {
            name: field.default
            for name, field in fields.items()
            if field.default is not PydanticUndefined
        }
        doc = inspect.cleandoc(settings_class.__doc__ or "").split("\n\n")[0]
        rows = [
            f"| {_variables(name, field, prefix)} | {_default(field, defaults)} | "
            f"{_escaped(field.description or '')}{_constraints(field)} |"
            for name, field in fields.items()
        ]
        sections.append(
            f"### `{prefix}*`: `{target.replace(':', '.')}`\n\n{doc}\n\n"
            "| variable | default | meaning |\n|---|---|---|\n" + "\n".join(rows)
        )
    return "\n\n".join(sections)


def _help_text(arguments: tuple[str, ...]) -> str:
    environment = {**os.environ, "COLUMNS": "88", "PYTHONPATH": str(REPOSITORY_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "twentyq.cli", *arguments, "--help"],
        capture_output=True,
        text=True,
        cwd=REPOSITORY_ROOT,
        env=environment,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"`twentyq {' '.join(arguments)} --help` exited {done.returncode}: {done.stderr}"
        )
    return done.stdout.rstrip()


def render_cli() -> str:
    """Every command's ``--help``, as the installed code prints it."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        texts = list(pool.map(_help_text, [arguments for arguments, _ in CLI_COMMANDS]))
    sections = []
    for (_, heading), text in zip(CLI_COMMANDS, texts, strict=True):
        sections.append(f"### `{heading}`\n\n```text\n$ {heading} --help\n{text}\n```")
        if heading == "twentyq":
            sections.append(
                "### `twentyq worker`\n\n`twentyq worker [OPTIONS]` runs `celery worker` on the "
                "`twentyq.turns` queue with `--without-gossip --without-mingle`; every option "
                "is Celery's (`celery worker --help`). Its settings are the `WORKER_*` "
                "variables ([settings](settings.md))."
            )
    return "\n\n".join(sections)


def render_schemas() -> str:
    """The JSON Schema of each message on the wire, from the pydantic models."""
    messages = importlib.import_module("producer.messages")
    sections = []
    for name in MESSAGE_MODELS:
        model: type[BaseModel] = getattr(messages, name)
        doc = inspect.cleandoc(model.__doc__ or "").split("\n\n")[0]
        schema = json.dumps(model.model_json_schema(), indent=2, ensure_ascii=False)
        sections.append(f"### {name}\n\n{doc}\n\n```json\n{schema}\n```")
    return "\n\n".join(sections)


def render_errors() -> str:
    """Every error class, by package, with its parent and its "Raised when…" docstring."""
    rows = []
    for module_name in ERROR_MODULES:
        module = importlib.import_module(module_name)
        for name, value in vars(module).items():
            if not (inspect.isclass(value) and issubclass(value, BaseException)):
                continue
            if value.__module__ != module_name:
                continue
            parent = value.__mro__[1].__name__
            doc = " ".join(inspect.cleandoc(value.__doc__ or "").split())
            rows.append(f"| `{module_name}.{name}` | `{parent}` | {doc} |")
    return "| error | is a | when |\n|---|---|---|\n" + "\n".join(rows)


RENDERERS: dict[str, Callable[[], str]] = {
    "settings": render_settings,
    "cli": render_cli,
    "schemas": render_schemas,
    "errors": render_errors,
}


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs event: replace each ``<!-- reference:NAME -->`` line with its generated block."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in RENDERERS:
            raise ValueError(f"unknown reference marker {name!r}: one of {sorted(RENDERERS)}")
        return RENDERERS[name]()

    return _MARKER.sub(replace, markdown)
