"""Container health check: is the running deployable's metrics endpoint answering?

The image runs one of three commands (``twentyq worker``, ``twentyq export``,
``twentyq drift``). The worker starts serving metrics only after its pinned
model has loaded and answered a warm-up predict, and the sidecar once it is
consuming, so an answering ``/metrics`` means "up and serving". The drift job
is a one-shot batch job with no port: it is healthy while it runs.

The command is read from PID 1's command line (tini -- twentyq COMMAND), the
port from the same variables the deployables read. Exit 0 healthy, 1 not.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

# command -> (port variable, default port); the defaults match worker/ and monitoring/ settings.
METRICS_PORTS = {
    "worker": ("WORKER_METRICS_PORT", 9100),
    "export": ("MONITORING_METRICS_PORT", 9101),
}


def running_command(cmdline_path: Path = Path("/proc/1/cmdline")) -> str:
    """The twentyq command PID 1 runs (``worker``, ``export``, ...), or ``""``."""
    args = cmdline_path.read_bytes().split(b"\0")
    words = [arg.decode(errors="replace") for arg in args if arg]
    for index, word in enumerate(words):
        if Path(word).name == "twentyq" and index + 1 < len(words):
            return words[index + 1]
    return ""


def metrics_url(command: str, environ: dict[str, str]) -> str | None:
    """The metrics URL to probe for ``command``, or None when it serves none."""
    if command not in METRICS_PORTS:
        return None
    variable, default_port = METRICS_PORTS[command]
    port = int(environ.get(variable, default_port))
    return None if port == 0 else f"http://127.0.0.1:{port}/metrics"


def main(argv: list[str] | None = None) -> int:
    """Probe the metrics endpoint of the running command; print why when unhealthy."""
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else running_command()
    url = metrics_url(command, dict(os.environ))
    if url is None:
        return 0
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            if response.status == 200:
                return 0
            print(f"unhealthy: {url} answered HTTP {response.status}", file=sys.stderr)
    except OSError as error:
        print(f"unhealthy: {url} did not answer ({error})", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
