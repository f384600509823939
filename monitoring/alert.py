"""Slack-compatible alert messages, POSTed to a webhook."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any

from monitoring.errors import AlertDeliveryError
from monitoring.evaluation import Alert

logger = logging.getLogger(__name__)


def _figure(number: float) -> str:
    return f"{number:.4g}"


def alert_message(alerts: list[Alert], report_link: str) -> dict[str, Any]:
    """A Slack message (``text`` plus ``blocks``) naming each metric, its values and the model."""
    lines = [
        f"*{a.metric}* on {a.model_name} version {a.model_version}: effect {_figure(a.value)} "
        f"(threshold {_figure(a.threshold)}, p {a.p_value:.3g}), "
        f"reference {_figure(a.reference_value)} → current {_figure(a.current_value)}, "
        f"breaching {a.consecutive} windows in a row"
        for a in alerts
    ]
    versions = sorted({f"{a.model_name} v{a.model_version}" for a in alerts})
    summary = f"twentyq drift alert: {len(alerts)} metric(s) drifting on {', '.join(versions)}"
    return {
        "text": f"{summary}\n" + "\n".join(lines) + f"\nReport: {report_link}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": summary[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Report: {report_link}"}]},
        ],
    }


def post_alert(webhook_url: str, message: dict[str, Any], timeout_s: float = 10.0) -> None:
    """POST the message as JSON; raise :class:`AlertDeliveryError` when it does not arrive."""
    request = urllib.request.Request(
        webhook_url,
        data=json.dumps(message).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status = response.status
    except (urllib.error.URLError, OSError) as error:
        raise AlertDeliveryError(
            f"the alert webhook did not accept the alert: {error}; check MONITORING_WEBHOOK_URL"
        ) from error
    if status >= 300:
        raise AlertDeliveryError(
            f"the alert webhook answered HTTP {status}; check MONITORING_WEBHOOK_URL"
        )
