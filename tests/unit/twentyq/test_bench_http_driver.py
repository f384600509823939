"""`twentyq bench`: the HTTP client drives a server open- and closed-loop and checks answers.

The server is a stand-in on 127.0.0.1 (no network): the driver's accounting is
what is checked here, not its speed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from twentyq.benchmark.http_driver import HttpDriver
from twentyq.benchmark.schedule import ClosedLoop, OpenLoop

CORPUS = [{"game_id": "g", "turn": 0, "history": [], "rejected_guesses": []}]
GOOD = {"predictions": [{"action": "ask", "question": {"id": "q1", "text": "Q?"}, "guesses": []}]}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as mlflow's uvicorn
    answer: dict[str, Any] = GOOD
    bodies: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.bodies.append(json.loads(self.rfile.read(length)))
        self._reply(200, json.dumps(self.answer).encode())

    def do_GET(self) -> None:
        self._reply(200 if self.path == "/ping" else 404, b"\n")

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        return None


def _serve(answer: dict[str, Any]) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    bodies: list[dict[str, Any]] = []
    handler = type("Handler", (_Handler,), {"answer": answer, "bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], bodies
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def good_server() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    yield from _serve(GOOD)


@pytest.fixture()
def broken_server() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    yield from _serve({"predictions": [{"action": "ask"}]})


def test_open_loop_sends_every_scheduled_turn(good_server: tuple[int, list[Any]]) -> None:
    port, bodies = good_server
    plan = OpenLoop(40.0, 1.0, seed=2)
    run = HttpDriver("127.0.0.1", port, CORPUS, connections=4).run(plan)
    assert run.sent == len(plan.offsets_s) == len(run.latencies_ms)
    assert (run.failed, run.lost) == (0, 0)
    assert all(latency > 0 for latency in run.latencies_ms)
    assert bodies[0] == {"inputs": [{"history": [], "rejected_guesses": []}]}
    assert run.client_cpu_s > 0


def test_closed_loop_keeps_requests_in_flight(good_server: tuple[int, list[Any]]) -> None:
    port, _ = good_server
    run = HttpDriver("127.0.0.1", port, CORPUS, connections=3).run(ClosedLoop(3, 0.6, 0.1))
    assert run.failed == 0 and len(run.latencies_ms) == run.sent > 3
    assert run.throughput_per_s > 0


def test_answers_that_break_the_contract_count_as_failures(
    broken_server: tuple[int, list[Any]],
) -> None:
    port, _ = broken_server
    run = HttpDriver("127.0.0.1", port, CORPUS, connections=2).run(OpenLoop(20.0, 0.5))
    assert run.failed == run.sent > 0 and not run.latencies_ms
    assert "contract" in run.errors[0]


def test_ping_is_a_plain_round_trip(good_server: tuple[int, list[Any]]) -> None:
    port, bodies = good_server
    driver = HttpDriver("127.0.0.1", port, CORPUS, connections=2, path="/ping")
    run = driver.run(ClosedLoop(2, 0.4, 0.1))
    assert run.failed == 0 and run.sent > 0 and bodies == []
