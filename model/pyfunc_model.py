"""The "models from code" entry point MLflow runs when it loads a version.

MLflow copies this file into every logged version and executes it at load
time, after putting the version's own copy of ``model/`` on ``sys.path``.
"""

from __future__ import annotations

import mlflow
from model.pyfunc import TwentyQuestionsModel

mlflow.models.set_model(TwentyQuestionsModel())
