"""Prometheus metrics, all recorded in the worker's main process.

Batches run in pool children under prefork, but each batch returns a small
report to the main process (``BatchReport``), which records it: one registry,
no prometheus multiprocess directory to manage.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from producer.messages import ModelRef

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


@dataclass
class BatchReport:
    """What one batch did, sent back from the pool to the main process (picklable)."""

    batch_size: int = 0
    inference_s: float | None = None
    queue_latencies_s: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    delivered: bool = False


class WorkerMetrics:
    """The worker's metrics in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.turns = Counter(
            "twentyq_worker_turns",
            "Turns handled, by outcome (answered, already_answered, dead_lettered)",
            ["outcome"],
            registry=self.registry,
        )
        self.queue_latency = Histogram(
            "twentyq_worker_queue_latency_seconds",
            "Time from sent_at to the start of inference",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.inference_latency = Histogram(
            "twentyq_worker_inference_latency_seconds",
            "Duration of one predict call (one batch)",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "twentyq_worker_batch_size",
            "Turns per batch",
            buckets=BATCH_SIZE_BUCKETS,
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "twentyq_worker_dead_letters",
            "Messages dead-lettered, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.consumer_restarts = Counter(
            "twentyq_worker_consumer_restarts",
            "Times Celery's consumer restarted its event loop (a broker reconnect, or an error)",
            registry=self.registry,
        )
        self.model_info = Gauge(
            "twentyq_worker_model_info",
            "The model version this worker serves (value 1)",
            ["name", "version", "run_id"],
            registry=self.registry,
        )

    def record_model(self, model: ModelRef) -> None:
        """Label the model-info gauge with the served version."""
        self.model_info.labels(model.name, model.version, model.run_id).set(1)

    def record_dead_letter(self, reason: str) -> None:
        """Count one message dead-lettered outside a batch (by the consumer)."""
        self.dead_letters.labels(reason).inc()
        self.turns.labels("dead_lettered").inc()

    def record_batch(self, report: BatchReport) -> None:
        """Record what a batch did."""
        if report.batch_size:
            self.batch_size.observe(report.batch_size)
        if report.inference_s is not None:
            self.inference_latency.observe(report.inference_s)
        for latency_s in report.queue_latencies_s:
            self.queue_latency.observe(latency_s)
        for outcome, count in report.outcomes.items():
            self.turns.labels(outcome).inc(count)
        for reason, count in report.dead_letters.items():
            self.dead_letters.labels(reason).inc(count)

    def serve(self, port: int, problems: Callable[[], list[str]] = list) -> None:
        """Serve ``/metrics``, and ``/ready`` (503 and the reasons ``problems()`` gives)."""
        metrics_app = make_wsgi_app(self.registry)

        def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            if environ.get("PATH_INFO") != "/ready":
                return metrics_app(environ, start_response)  # type: ignore[no-any-return]
            found = problems()
            status = "503 Service Unavailable" if found else "200 OK"
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [("\n".join(found) or "ready").encode() + b"\n"]

        server = make_server("", port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
        threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """One thread per request, daemonic, so a slow scrape never blocks another."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None
