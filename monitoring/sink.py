"""Where export files live: a local folder or an S3 prefix, with one layout for both.

Layout under the sink root::

    date=YYYY-MM-DD/model_version=V/part-<UTC time>-<random>.parquet   records
    _rejected/date=YYYY-MM-DD/rejected-<UTC time>-<random>.jsonl        undecodable events

A file is written whole or not at all (a temporary file renamed into place, or
one S3 PUT), so readers never see half a batch. A batch redelivered after a
crash may be written twice; readers drop duplicate ``event_id`` values.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from abc import ABC, abstractmethod
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import pandas as pd
import pyarrow.parquet as pq
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from monitoring.errors import SinkUnavailableError
from monitoring.record import COLUMNS, deduplicate, partition_key, records_table
from producer.errors import ConfigurationError

REJECTED_PREFIX = "_rejected"


def _unique_name(stem: str, suffix: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stem}-{stamp}-{uuid.uuid4().hex[:12]}{suffix}"


def _partition_date(key: str) -> date | None:
    for part in key.split("/"):
        if part.startswith("date="):
            try:
                return date.fromisoformat(part[len("date=") :])
            except ValueError:
                return None
    return None


class Sink(ABC):
    """A place export files are written to and read back from."""

    url: str

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` at ``key`` (relative to the sink root) in one step."""

    @abstractmethod
    def list_keys(self) -> list[str]:
        """Every key under the sink root."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The bytes stored at ``key``."""

    def write_records(self, records: list[dict[str, Any]]) -> list[str]:
        """Write records as one Parquet file per (date, model version); return the keys."""
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for record in records:
            groups[partition_key(record)].append(record)
        keys = []
        for (day, version), rows in sorted(groups.items()):
            buffer = io.BytesIO()
            pq.write_table(records_table(rows), buffer, compression="zstd")
            key = f"date={day}/model_version={version}/{_unique_name('part', '.parquet')}"
            self.put_bytes(key, buffer.getvalue())
            keys.append(key)
        return keys

    def write_rejected(self, entries: list[dict[str, Any]]) -> str:
        """Write undecodable events, with why they were refused, as one JSON-lines file."""
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        key = f"{REJECTED_PREFIX}/date={day}/{_unique_name('rejected', '.jsonl')}"
        lines = "".join(json.dumps(entry, default=str) + "\n" for entry in entries)
        self.put_bytes(key, lines.encode())
        return key

    def record_keys(self, start: datetime | None = None, end: datetime | None = None) -> list[str]:
        """Keys of the record files whose date partition may hold events in [start, end)."""
        keys = []
        for key in self.list_keys():
            if key.startswith(REJECTED_PREFIX) or not key.endswith(".parquet"):
                continue
            day = _partition_date(key)
            if day is None:
                continue
            if start is not None and day < start.date():
                continue
            if end is not None and day > (end - timedelta(microseconds=1)).date():
                continue
            keys.append(key)
        return sorted(keys)

    def read_records(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        """Every record with ``start <= event_time < end``, duplicates removed."""
        frames = [
            pq.read_table(io.BytesIO(self.get_bytes(k))).to_pandas()
            for k in self.record_keys(start, end)
        ]
        frames = [frame for frame in frames if not frame.empty]
        if not frames:
            return pd.DataFrame({column: pd.Series(dtype="object") for column in COLUMNS})
        frame = pd.concat(frames, ignore_index=True)
        if start is not None:
            frame = frame[frame["event_time"] >= pd.Timestamp(start)]
        if end is not None:
            frame = frame[frame["event_time"] < pd.Timestamp(end)]
        return deduplicate(frame)


class LocalSink(Sink):
    """A folder on local disk (``file://PATH``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.url = f"file://{self.root}"

    def put_bytes(self, key: str, data: bytes) -> None:
        """Write to a temporary name and rename, so a reader never sees a partial file."""
        target = self.root / key
        temporary = target.with_name(f".{target.name}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except OSError as error:
            raise SinkUnavailableError(
                f"cannot write {target}: {error}; check the folder exists and is writable"
            ) from error

    def list_keys(self) -> list[str]:
        """Every file under the root, as a '/'-separated relative key (temporaries skipped)."""
        if not self.root.exists():
            return []
        return [
            path.relative_to(self.root).as_posix()
            for path in self.root.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        ]

    def get_bytes(self, key: str) -> bytes:
        """Read one file."""
        try:
            return (self.root / key).read_bytes()
        except OSError as error:
            raise SinkUnavailableError(f"cannot read {self.root / key}: {error}") from error


class S3Sink(Sink):
    """An S3 bucket and prefix (``s3://BUCKET/PREFIX``), through boto3."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}"
        self._client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    def _full_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, action: str, function: Any, **kwargs: Any) -> Any:
        try:
            return function(Bucket=self.bucket, **kwargs)
        except (BotoCoreError, ClientError) as error:
            raise SinkUnavailableError(
                f"cannot {action} s3://{self.bucket}/{self.prefix}: {error}; check the bucket "
                "exists, the credentials and MONITORING_S3_ENDPOINT_URL"
            ) from error

    def put_bytes(self, key: str, data: bytes) -> None:
        """One PUT: S3 makes the object visible whole or not at all."""
        self._call("write to", self._client.put_object, Key=self._full_key(key), Body=data)

    def list_keys(self) -> list[str]:
        """Every key under the prefix, relative to it."""
        keys: list[str] = []
        token: dict[str, str] = {}
        root = f"{self.prefix}/" if self.prefix else ""
        while True:
            page = self._call("list", self._client.list_objects_v2, Prefix=root, **token)
            keys += [item["Key"][len(root) :] for item in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return keys
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def get_bytes(self, key: str) -> bytes:
        """Read one object."""
        response = self._call("read from", self._client.get_object, Key=self._full_key(key))
        body: bytes = response["Body"].read()
        return body


def open_sink(url: str, s3_endpoint_url: str | None = None) -> Sink:
    """The sink a ``file://`` or ``s3://`` URL names."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalSink(Path(parsed.netloc + parsed.path))
    if parsed.scheme == "s3":
        return S3Sink(parsed.netloc, parsed.path, endpoint_url=s3_endpoint_url)
    raise ConfigurationError(
        f"unsupported sink URL {url!r}: set MONITORING_SINK_URL to file://PATH or s3://BUCKET/PREFIX"
    )
