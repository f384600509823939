"""The local sink: partitioned Parquet files, whole or absent, read back without duplicates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from monitoring.errors import SinkUnavailableError
from monitoring.record import event_record
from monitoring.sink import LocalSink, open_sink
from producer.errors import ConfigurationError
from tests.unit.monitoring.synthetic import (
    REFERENCE,
    events_from_records,
    synthetic_records,
)

DAY = datetime(2026, 5, 1, tzinfo=UTC)


def _records(games: int, start: datetime, version: str = "2") -> list[dict[str, object]]:
    frame = synthetic_records(
        np.random.default_rng(games),
        games,
        REFERENCE,
        start,
        start + timedelta(hours=20),
        model_version=version,
    )
    return [event_record(event) for event in events_from_records(frame)]


def test_files_are_partitioned_by_date_and_model_version(tmp_path: Path) -> None:
    sink = LocalSink(tmp_path)
    records = _records(5, DAY) + _records(4, DAY + timedelta(days=1), version="3")
    keys = sink.write_records(records)
    assert {key.rsplit("/", 1)[0] for key in keys} == {
        "date=2026-05-01/model_version=2",
        "date=2026-05-02/model_version=3",
    }
    assert not list(tmp_path.rglob(".*.tmp")), "a temporary file was left behind"
    frame = sink.read_records()
    assert sorted(frame["event_id"]) == sorted(r["event_id"] for r in records)


def test_reading_a_window_keeps_only_its_records_and_drops_duplicates(tmp_path: Path) -> None:
    sink = open_sink(f"file://{tmp_path}")
    first, second = _records(6, DAY), _records(7, DAY + timedelta(days=2))
    sink.write_records(first)
    sink.write_records(second)
    sink.write_records(first[:10])  # a batch redelivered after a crash
    window = sink.read_records(DAY + timedelta(days=1), DAY + timedelta(days=3))
    assert sorted(window["event_id"]) == sorted(r["event_id"] for r in second)
    everything = sink.read_records()
    assert len(everything) == len(first) + len(second)
    assert everything["event_id"].is_unique


def test_undecodable_events_go_to_the_rejected_folder(tmp_path: Path) -> None:
    sink = LocalSink(tmp_path)
    key = sink.write_rejected([{"reason": "ValidationError", "body": "{not json"}])
    assert key.startswith("_rejected/date=")
    assert "{not json" in (tmp_path / key).read_text()
    assert sink.read_records().empty


def test_an_unwritable_folder_is_a_transient_sink_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SinkUnavailableError, match="cannot write"):
        LocalSink(blocker).write_records(_records(1, DAY))


def test_an_unknown_sink_scheme_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError, match="MONITORING_SINK_URL"):
        open_sink("ftp://host/exports")
