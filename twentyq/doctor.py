"""`twentyq doctor`: check the environment a command is about to run in, one line per check.

Each check is a small function returning a :class:`Check`; the probes that leave
the process (Redis, MLflow, sockets) take a short timeout so that the doctor
answers in seconds when something is down.
"""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BROKER_TIMEOUT_S = 2.0
REGISTRY_TIMEOUT_S = 5
MIN_PYTHON = (3, 11)
# The worker's transport uses BLMOVE (6.2) and LPOP with a count (6.2).
MIN_REDIS = (6, 2)


@dataclass(frozen=True)
class Check:
    """The outcome of one check: what was looked at, what was found, and what to do if it failed."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        """One line: ``ok``/``FAIL``, the name, the finding, and the fix when it failed."""
        status = "ok" if self.ok else "FAIL"
        fix = f" -> {self.fix}" if self.fix and not self.ok else ""
        return f"{status:<4}  {self.name:<9}  {self.detail}{fix}"


def check_python(version: tuple[int, ...] = tuple(sys.version_info[:3])) -> Check:
    """Python is at least 3.11."""
    text = ".".join(str(part) for part in version)
    if version[:2] >= MIN_PYTHON:
        return Check("python", True, f"Python {text}")
    return Check(
        "python",
        False,
        f"Python {text} is older than 3.11",
        "install Python 3.11 or newer and rerun `make install`",
    )


def check_torch() -> Check:
    """torch imports, and which build it is (CPU or CUDA)."""
    try:
        torch: Any = importlib.import_module("torch")
    except ImportError as error:
        return Check(
            "torch",
            False,
            f"torch is not installed ({error})",
            "run `make install` (it installs the pinned CPU build first)",
        )
    cuda = torch.version.cuda
    build = f"CUDA {cuda} build" if cuda else "CPU build"
    return Check("torch", True, f"torch {torch.__version__} ({build})")


@dataclass(frozen=True)
class BrokerProbe:
    """What the broker check found; the Redis version check reads it too."""

    check: Check
    redis_version: str | None = None


def ping_redis(url: str, timeout_s: float = BROKER_TIMEOUT_S) -> str:
    """PING the Redis at ``url`` and return its server version; raises on any failure."""
    import redis  # noqa: PLC0415

    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        client.ping()
        info: Any = client.info("server")
        return str(info.get("redis_version", "unknown"))
    finally:
        client.close()


def probe_broker(ping: Callable[[str], str] = ping_redis) -> BrokerProbe:
    """TWENTYQ_BROKER_URL parses, and a Redis broker answers PING within 2 s."""
    from producer.broker import REDIS_SCHEMES, masked_url  # noqa: PLC0415
    from producer.errors import ConfigurationError  # noqa: PLC0415
    from producer.settings import load_broker_settings  # noqa: PLC0415

    try:
        settings = load_broker_settings()
    except ConfigurationError as error:
        detail = " ".join(str(error).split())
        return BrokerProbe(Check("broker", False, detail, "fix TWENTYQ_BROKER_URL"))
    url = masked_url(settings.broker_url)
    if settings.scheme not in REDIS_SCHEMES:
        return BrokerProbe(Check("broker", True, f"{url}: not checked (sqs/pubsub)"))
    try:
        version = ping(settings.broker_url)
    except Exception as error:
        return BrokerProbe(
            Check(
                "broker",
                False,
                f"{url} did not answer PING ({error})",
                "start Redis (`redis-server`) or set TWENTYQ_BROKER_URL",
            )
        )
    return BrokerProbe(Check("broker", True, f"{url} answers PING"), version)


def check_redis_version(probe: BrokerProbe) -> Check:
    """The Redis server is at least 6.2 (BLMOVE, LPOP with a count)."""
    if probe.redis_version is None:
        if probe.check.ok:
            return Check("redis", True, "not checked (not a Redis broker)")
        return Check(
            "redis", False, "not checked: the broker did not answer", "fix the broker line first"
        )
    parts = tuple(int(part) for part in probe.redis_version.split(".")[:2] if part.isdigit())
    if parts >= MIN_REDIS:
        return Check("redis", True, f"Redis {probe.redis_version}")
    return Check(
        "redis",
        False,
        f"Redis {probe.redis_version} is older than 6.2 "
        "(the worker needs BLMOVE and LPOP with a count)",
        "upgrade the Redis server to 6.2 or newer",
    )


def _sqlite_path(tracking_uri: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(tracking_uri[len(prefix) :]) if tracking_uri.startswith(prefix) else None


def check_registry(settings: Any) -> Check:
    """The MLflow registry answers a search (without creating a local store that is missing)."""
    uri = settings.tracking_uri
    database = _sqlite_path(uri)
    if database is not None and not database.exists():
        return Check(
            "registry",
            False,
            f"no MLflow store at {database}",
            "run `make demo` or set MLFLOW_TRACKING_URI",
        )
    # Short HTTP timeouts and no retries: a down server must not hold the doctor for minutes.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(REGISTRY_TIMEOUT_S))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    try:
        MlflowClient(tracking_uri=uri).search_registered_models(max_results=1)
    except Exception as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        return Check(
            "registry",
            False,
            f"MLflow store {uri} did not answer ({first_line})",
            "start the MLflow server or set MLFLOW_TRACKING_URI",
        )
    return Check("registry", True, f"MLflow store {uri} answers")


def check_pin(settings: Any) -> Check:
    """The pin file names a version the registry has (as `twentyq model check-pin`)."""
    from model.errors import ModelError  # noqa: PLC0415
    from model.registry import check_pin as resolve_pin  # noqa: PLC0415

    try:
        pin = resolve_pin(settings)
    except ModelError as error:
        return Check(
            "pin",
            False,
            " ".join(str(error).split()),
            "see docs/pin.md, or `twentyq model check-pin`",
        )
    return Check("pin", True, f"{settings.pin_path}: {pin.model_uri} (run {pin.run_id}) resolves")


def check_port(name: str, variable: str, port: int) -> Check:
    """Nothing listens on 127.0.0.1:``port`` yet (0 means metrics are off)."""
    if port == 0:
        return Check(name, True, f"{variable}=0: metrics off, not checked")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            return Check(
                name,
                False,
                f"port {port} is taken ({error.strerror})",
                f"stop what listens on it (`ss -ltnp 'sport = :{port}'`) or set {variable}",
            )
    return Check(name, True, f"port {port} is free ({variable})")


def _check_metrics_port(name: str, target: str) -> Check:
    module_name, class_name = target.split(":")
    settings_class = getattr(importlib.import_module(module_name), class_name)
    # Only the one variable, so that an unrelated bad setting does not fail the port check.
    variable = f"{settings_class.model_config.get('env_prefix', '')}METRICS_PORT"
    value = os.environ.get(variable)
    port = int(value) if value else int(settings_class.model_fields["metrics_port"].default)
    return check_port(name, variable, port)


def run_checks() -> list[Check]:
    """Every check, in the order a newcomer fixes them."""
    checks = [_guarded("python", check_python), _guarded("torch", check_torch)]
    try:
        probe = probe_broker()
    except Exception as error:
        probe = BrokerProbe(Check("broker", False, f"the check itself failed: {error}"))
    checks += [probe.check, check_redis_version(probe)]
    try:
        from model.settings import ModelSettings  # noqa: PLC0415

        model_settings: Any = ModelSettings()
    except Exception as error:
        checks.append(
            Check(
                "registry",
                False,
                f"cannot read the model settings ({error})",
                "install the model extra (`make install`)",
            )
        )
    else:
        checks.append(_guarded("registry", lambda: check_registry(model_settings)))
        checks.append(_guarded("pin", lambda: check_pin(model_settings)))
    checks += [
        _guarded("worker", lambda: _check_metrics_port("worker", "worker.settings:WorkerSettings")),
        _guarded(
            "sidecar",
            lambda: _check_metrics_port("sidecar", "monitoring.settings:MonitoringSettings"),
        ),
    ]
    return checks


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    # A check that breaks is one FAIL line, never a traceback that hides the other lines.
    try:
        return check()
    except Exception as error:
        return Check(name, False, f"the check itself failed: {type(error).__name__}: {error}")


def main(argv: Sequence[str] | None = None) -> int:
    """Print one line per check; exit 0 when all pass, 1 otherwise."""
    parser = argparse.ArgumentParser(
        prog="twentyq doctor",
        description="Check Python, torch, the broker, Redis, the MLflow registry, the pin and "
        "the metrics ports; print what to fix, one line each. Exits 1 when any check fails.",
    )
    parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    checks = run_checks()
    for check in checks:
        print(check.line(), flush=True)
    failed = sum(not check.ok for check in checks)
    print(f"\n{len(checks) - failed} ok, {failed} failed" if failed else f"\nall {len(checks)} ok")
    return 1 if failed else 0
