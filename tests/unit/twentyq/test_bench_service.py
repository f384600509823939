"""`twentyq bench`: options, the workers' environment, process memory from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from twentyq import bench
from twentyq.benchmark.service import (
    WorkerShape,
    cpu_seconds,
    mean_batch_size,
    memory_of_tree,
    parse_batch_counter,
    parse_smaps_rollup,
    process_tree,
    worker_environment,
)

ROLLUP = """55d0c-7ffd [rollup]
Rss:              524288 kB
Pss:              262144 kB
Pss_Anon:         100000 kB
Shared_Clean:      10000 kB
"""


def test_smaps_rollup_gives_rss_and_pss_in_mib() -> None:
    assert parse_smaps_rollup(ROLLUP) == {"rss_mib": 512.0, "pss_mib": 256.0}


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="needs Linux /proc")
def test_memory_covers_the_process_and_its_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert process_tree(os.getpid())[0] == os.getpid()
        assert child.pid in process_tree(os.getpid())
        rows = {row["pid"]: row for row in memory_of_tree(os.getpid())}
        assert rows[os.getpid()]["rss_mib"] > 10 and rows[child.pid]["pss_mib"] > 0
    finally:
        child.kill()
        child.wait()


def test_worker_environment_sets_the_shape() -> None:
    env = worker_environment(
        {"PATH": "/bin"}, "redis://127.0.0.1:7/0", "sqlite:///x.db", WorkerShape(1, 0, 2)
    )
    assert env["WORKER_BATCH_SIZE"] == "1" and env["WORKER_BATCH_WINDOW_MS"] == "0"
    assert env["WORKER_CONCURRENCY"] == "2" and env["WORKER_POOL"] == "prefork"
    assert env["TWENTYQ_BROKER_URL"] == "redis://127.0.0.1:7/0"
    assert env["MLFLOW_TRACKING_URI"] == "sqlite:///x.db"
    assert env["PATH"] == "/bin"


def test_options_defaults_quick_and_subsets() -> None:
    options = bench.parse_args([])
    assert options.duration_s == 8.0 and options.scenarios == bench.SCENARIOS
    quick = bench.parse_args(["--quick", "--scenarios", "limit,batched", "--output", "out"])
    assert quick.duration_s == 3.0 and quick.games < options.games
    assert quick.scenarios == ("limit", "batched") and quick.output_dir == Path("out")
    assert bench.parse_args(["--quick", "--duration-s", "5"]).duration_s == 5.0


@pytest.mark.parametrize(
    "argv",
    [
        ["--scenarios", "nginx"],
        ["--batch-size", "0"],
        ["--duration-s", "0.5"],
        ["--in-flight", "0"],
    ],
)
def test_nonsense_options_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(argv)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_cpu_seconds_grow_with_work_and_ignore_ended_processes() -> None:
    before_s = cpu_seconds([os.getpid()])
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    assert cpu_seconds([os.getpid()]) - before_s >= 0.1
    assert cpu_seconds([2**22 + 7]) == 0.0  # no such process


def test_mean_batch_size_comes_from_the_worker_histogram() -> None:
    text = (
        "# HELP twentyq_worker_batch_size Turns per batch\n"
        'twentyq_worker_batch_size_bucket{le="1.0"} 3.0\n'
        "twentyq_worker_batch_size_count 10.0\n"
        "twentyq_worker_batch_size_sum 120.0\n"
    )
    before = parse_batch_counter(text)
    assert before == (120.0, 10.0)
    assert mean_batch_size(before, (420.0, 20.0)) == 30.0
    assert mean_batch_size(before, before) is None  # no batch in between
    assert parse_batch_counter("twentyq_worker_turns_total 3.0\n") is None


def test_scenarios_run_in_the_bench_order_once_each() -> None:
    assert bench.parse_scenarios(" stock_celery, limit,stock_celery") == ("limit", "stock_celery")
    assert bench.parse_args(["--scenarios", "stock_celery"]).scenarios == ("stock_celery",)
    assert "stock_celery" in bench.SCENARIOS and "unbatched" in bench.SCENARIOS
    with pytest.raises(ValueError, match=r"takes names from limit, batched.*got nginx"):
        bench.parse_scenarios("batched,nginx")
    with pytest.raises(ValueError, match="got none"):
        bench.parse_scenarios(" , ")
