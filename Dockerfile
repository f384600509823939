# syntax=docker/dockerfile:1.7
# One image for the three twentyq deployables, with the pinned model version baked in:
#   docker run IMAGE worker               Celery worker (metrics on 9100)
#   docker run IMAGE export               export sidecar (metrics on 9101)
#   docker run IMAGE drift --window 7d    drift job (one-shot)
# Build (see docs/deployment.md for every argument and secret):
#   docker build --build-arg TORCH_INDEX_URL=... --build-arg MLFLOW_TRACKING_URI=... \
#     --build-arg MODEL_NAME=... --build-arg MODEL_VERSION=... --build-arg MODEL_RUN_ID=... \
#     --secret id=MLFLOW_TRACKING_USERNAME,env=MLFLOW_TRACKING_USERNAME ... -t twentyq:TAG .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
# build: a virtualenv with CPU torch and twentyq's worker, monitoring and broker extras.
FROM ${PYTHON_IMAGE} AS build

# The PyTorch CPU wheel index. No default on purpose: without it pip would take the CUDA
# build of torch from the default index (several GB of GPU libraries nobody here uses).
ARG TORCH_INDEX_URL
ARG TORCH_VERSION=2.13.0

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

RUN test -n "${TORCH_INDEX_URL}" \
    || { echo "set --build-arg TORCH_INDEX_URL to the PyTorch CPU wheel index (docs/deployment.md)" >&2; exit 1; }

# Compilers for the few dependencies that may build from source (pycurl for SQS). Versions are
# not pinned: Debian's security archive replaces them, and this stage is thrown away.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential libcurl4-openssl-dev libssl-dev \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY producer/ producer/
COPY worker/ worker/
COPY monitoring/ monitoring/
COPY model/ model/
COPY twentyq/ twentyq/
# torch is already satisfied, so this resolves everything else from the default index. The
# project itself is installed, not a named package: its version bounds live in pyproject.toml.
# The check fails the build if a dependency dragged in a CUDA build of torch after all.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[worker,monitoring,sqs,pubsub]" \
    && python -c "import torch; assert torch.version.cuda is None, torch.__version__"

# ---------------------------------------------------------------------------------------------
# model: resolve mlflow/model_version.json against the registry and copy that version here.
FROM build AS model

ARG MLFLOW_TRACKING_URI
# Filled by the CI from the pin (and the registry, for the run id); checked against it below.
ARG MODEL_NAME=""
ARG MODEL_VERSION=""
ARG MODEL_RUN_ID=""
# Only for registries that hand out direct S3 artifact URLs instead of proxying them.
ARG MLFLOW_S3_ENDPOINT_URL=""

COPY deploy/docker/fetch_model.py /build/fetch_model.py
COPY mlflow/model_version.json /build/model_version.json

# Credentials are BuildKit secrets (files under /run/secrets), never build args: build args
# stay in the build cache and history. fetch_model.py reads whichever are present. The ARGs
# above reach it as environment variables, as every ARG does in RUN.
RUN --mount=type=secret,id=MLFLOW_TRACKING_USERNAME,required=false \
    --mount=type=secret,id=MLFLOW_TRACKING_PASSWORD,required=false \
    --mount=type=secret,id=MLFLOW_TRACKING_TOKEN,required=false \
    --mount=type=secret,id=AWS_ACCESS_KEY_ID,required=false \
    --mount=type=secret,id=AWS_SECRET_ACCESS_KEY,required=false \
    test -n "${MLFLOW_TRACKING_URI}" \
    || { echo "set --build-arg MLFLOW_TRACKING_URI to the registry holding the pinned model" >&2; exit 1; } \
    && python /build/fetch_model.py \
         --pin /build/model_version.json \
         --dest /opt/twentyq/model \
         --pin-out /opt/twentyq/model_version.json \
         --expect-name "${MODEL_NAME}" \
         --expect-version "${MODEL_VERSION}" \
         --expect-run-id "${MODEL_RUN_ID}"

# ---------------------------------------------------------------------------------------------
# runtime: no compilers, no registry access needed, a non-root user.
FROM ${PYTHON_IMAGE} AS runtime

ARG MODEL_NAME=""
ARG MODEL_VERSION=""
ARG MODEL_RUN_ID=""
ARG GIT_COMMIT=""
ARG IMAGE_SOURCE=""

# tini forwards SIGTERM to the deployable (a warm shutdown that finishes the batch);
# libcurl4 is pycurl's runtime library. Unpinned for the reason given in the build stage.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini libcurl4 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 twentyq \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin twentyq

COPY --from=build /opt/venv /opt/venv
COPY --from=model /opt/twentyq/model /opt/twentyq/model
COPY --from=model /opt/twentyq/model_version.json /app/mlflow/model_version.json
COPY deploy/docker/healthcheck.py /opt/twentyq/healthcheck.py

WORKDIR /app
# HOME, MPLCONFIGDIR: the root filesystem may be read-only; /tmp is the writable place.
# HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE: everything the model needs is baked in, never fetched.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    WORKER_MODEL_PATH=/opt/twentyq/model \
    TWENTYQ_PIN_PATH=/app/mlflow/model_version.json

LABEL org.opencontainers.image.title="twentyq" \
      org.opencontainers.image.description="twentyq worker, export sidecar and drift job with the pinned model" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.source="${IMAGE_SOURCE}" \
      io.twentyq.model.name="${MODEL_NAME}" \
      io.twentyq.model.version="${MODEL_VERSION}" \
      io.twentyq.model.run-id="${MODEL_RUN_ID}"

USER 10001:10001
EXPOSE 9100 9101

HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "/opt/twentyq/healthcheck.py"]

ENTRYPOINT ["tini", "--", "twentyq"]
CMD ["worker"]
