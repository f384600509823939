"""The simulate summary: win rate, turns, throughput and latency figures."""

from __future__ import annotations

import json

import pytest

from producer.simulation import GameRecord, SimulationSummary


def _summary() -> SimulationSummary:
    won = GameRecord(
        game_id="a",
        secret_noun="cat",
        won=True,
        turns=4,
        client_ms=[10.0, 20.0, 30.0, 40.0],
        queue_ms=[1.0, 2.0, 3.0, 4.0],
        inference_ms=[5.0, 5.0, 5.0, 5.0],
    )
    lost = GameRecord(
        game_id="b",
        secret_noun="dog",
        turns=2,
        client_ms=[50.0, 60.0],
        queue_ms=[5.0, 6.0],
        inference_ms=[5.0, 5.0],
    )
    failed = GameRecord(game_id="c", secret_noun="owl", failed="dead-lettered")
    return SimulationSummary(records=(won, lost, failed), elapsed_s=2.0)


def test_figures() -> None:
    data = _summary().to_dict()
    assert (data["games"], data["wins"], data["failed_games"]) == (3, 1, 1)
    assert data["win_rate"] == pytest.approx(1 / 3)
    assert data["mean_turns"] == 2.0
    assert data["median_turns"] == 2
    assert data["total_turns"] == 6
    assert data["throughput_turns_per_s"] == 3.0
    assert data["latency"]["client_ms"]["p50_ms"] == 35.0
    assert data["latency"]["queue_ms"]["count"] == 6
    assert data["latency"]["inference_ms"]["p99_ms"] == 5.0
    json.dumps(data)


def test_text_names_every_figure() -> None:
    text = _summary().describe()
    for expected in (
        "games            3 (1 failed)",
        "win rate         33.3% (1/3)",
        "mean 2.0, median 2",
        "3.0 turns/s (6 turns in 2.0 s)",
        "enqueue→guess",
        "worker queue",
        "worker infer",
        "p50 35.0 ms",
    ):
        assert expected in text


def test_no_turns_means_no_latency_figures() -> None:
    summary = SimulationSummary(records=(GameRecord(game_id="a", secret_noun="x"),), elapsed_s=1.0)
    assert summary.to_dict()["latency"]["client_ms"] is None
    assert "n/a" in summary.describe()
