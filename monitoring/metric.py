"""The sidecar's Prometheus metrics, on a registry of its own."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


@dataclass
class ExportMetrics:
    """Counters and gauges the export sidecar keeps (names start ``twentyq_export_``)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.records = Counter(
            "twentyq_export_records",
            "Records written to the sink, by event kind",
            ["kind"],
            registry=self.registry,
        )
        self.batches = Counter(
            "twentyq_export_batches", "Batches written and acknowledged", registry=self.registry
        )
        self.write_errors = Counter(
            "twentyq_export_write_errors",
            "Failed attempts to write a batch to the sink (each is retried)",
            registry=self.registry,
        )
        self.rejected = Counter(
            "twentyq_export_rejected",
            "Undecodable events dead-lettered to the sink's _rejected/ folder",
            registry=self.registry,
        )
        self.lag_s = Gauge(
            "twentyq_export_lag_seconds",
            "Age of the oldest event in the last batch written, when it was written",
            registry=self.registry,
        )
        self.buffered = Gauge(
            "twentyq_export_buffered_records",
            "Records received and not yet written",
            registry=self.registry,
        )

    def serve(self, port: int) -> None:
        """Expose the metrics on ``port`` (0 means do not serve)."""
        if port:
            start_http_server(port, registry=self.registry)
