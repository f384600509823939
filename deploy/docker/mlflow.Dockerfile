# The MLflow tracking server of the compose `tracking` profile: PostgreSQL backend store,
# artifacts in MinIO (S3), proxied to clients (--serve-artifacts) so clients need no S3 keys.
# Same MLflow minor as the worker's pyproject pin, so client and server agree on the API.
FROM python:3.11-slim-bookworm

ARG MLFLOW_VERSION=3.17.2
ARG PSYCOPG2_VERSION=2.9.13
ARG BOTO3_VERSION=1.44.5

RUN pip install --no-cache-dir --disable-pip-version-check \
        "mlflow==${MLFLOW_VERSION}" \
        "psycopg2-binary==${PSYCOPG2_VERSION}" \
        "boto3==${BOTO3_VERSION}" \
    && groupadd --system --gid 10002 mlflow \
    && useradd --system --uid 10002 --gid 10002 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin mlflow

USER 10002:10002
EXPOSE 5000

# No curl in the slim image: Python asks the server's own /health endpoint.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=6 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:5000/health', timeout=4)"]

ENTRYPOINT ["mlflow", "server"]
CMD ["--host", "0.0.0.0", "--port", "5000"]
