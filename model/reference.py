"""The reference table: evaluation games as export records (docs/records.md).

The drift job compares production's export records with this table, so it
has exactly the export columns: one ``guess`` row per engine turn of every
evaluation game and one ``outcome`` row per game. What has no meaning
offline takes the placeholders the doc names: no queue or inference time,
the evaluation time as ``event_time``, the logged run as ``model_*``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

if TYPE_CHECKING:
    from model.simulation import Game, Move

RECORD_COLUMNS: tuple[str, ...] = (
    "kind", "event_id", "game_id", "turn", "action", "question_id", "top_noun",
    "top_probability", "guesses_json", "questions_asked", "answered_question_id",
    "answered_answer", "answered_text", "model_name", "model_version", "run_id",
    "event_time", "queue_ms", "inference_ms", "won", "revealed_noun", "turns",
    "metadata_json",
)  # fmt: skip
"""The export record columns, in the order of docs/records.md."""

_NUMBER_DTYPES: dict[str, str] = {
    "turn": "Int64",
    "questions_asked": "Int64",
    "turns": "Int64",
    "top_probability": "float64",
    "queue_ms": "float64",
    "inference_ms": "float64",
    "won": "boolean",
}
# Nullable dtypes throughout, so a column that is all null still has its type in Parquet;
# strings as Arrow ``string``, the type the sidecar's export files use.
_DTYPES: dict[str, Any] = {
    **{column: pd.ArrowDtype(pa.string()) for column in RECORD_COLUMNS if column != "event_time"},
    **_NUMBER_DTYPES,
}

# Fixed namespace so the same evaluation always yields the same event ids.
_EVENT_NAMESPACE = uuid.UUID("5b0f6f0e-8a3c-4c53-9d4e-2f1a7f0c9e11")


def records_frame(
    games: Mapping[str, Sequence[Game]],
    *,
    model_name: str | None = None,
    model_version: str | None = None,
    run_id: str | None = None,
    event_time: datetime | None = None,
) -> pd.DataFrame:
    """Return the evaluation games as export records, columns exactly as docs/records.md.

    ``games`` maps a scenario name to its games (``EvaluationReport.games``);
    ``game_id`` is ``eval-<scenario>-<n>`` and ``metadata_json`` names the
    scenario, the secret noun and the model version.
    """
    when = event_time if event_time is not None else datetime.now(UTC)
    model = {"model_name": model_name, "model_version": model_version, "run_id": run_id}
    rows: list[dict[str, Any]] = []
    for scenario, scenario_games in games.items():
        for number, game in enumerate(scenario_games):
            game_id = f"eval-{scenario}-{number:05d}"
            metadata = json.dumps(
                {"scenario": scenario, "secret": game.secret, "model_version": model_version},
                sort_keys=True,
            )
            base = {"game_id": game_id, "event_time": when, "metadata_json": metadata, **model}
            rows.extend(_guess_row(base, move) for move in game.moves)
            rows.append(_outcome_row(base, game))
    frame = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    # Microseconds, as the sidecar's export schema stores them.
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True).astype(
        "datetime64[us, UTC]"
    )
    return frame.astype(_DTYPES)


def _guess_row(base: Mapping[str, Any], move: Move) -> dict[str, Any]:
    top_noun, top_probability = move.guesses[0] if move.guesses else (None, None)
    answered_question_id, answered_answer, answered_text = move.answered or (None, None, None)
    event_id = uuid.uuid5(_EVENT_NAMESPACE, f"{base['game_id']}:{move.turn}")
    return {
        **base,
        "kind": "guess",
        "event_id": str(event_id),
        "turn": move.turn,
        "action": move.action,
        "question_id": move.question_id,
        "top_noun": top_noun,
        "top_probability": top_probability,
        "guesses_json": json.dumps(
            [{"noun": noun, "probability": probability} for noun, probability in move.guesses]
        ),
        "questions_asked": move.questions_asked,
        "answered_question_id": answered_question_id,
        "answered_answer": answered_answer,
        "answered_text": answered_text,
    }


def _outcome_row(base: Mapping[str, Any], game: Game) -> dict[str, Any]:
    return {
        **base,
        "kind": "outcome",
        "event_id": f"outcome:{base['game_id']}",
        "won": game.won,
        "revealed_noun": game.secret,
        "turns": len(game.moves),
    }
