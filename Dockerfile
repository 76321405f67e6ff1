# rs5m runtime image: the library, tasks, flows and their dependencies (Prefect, Dask, PyTorch).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 NO_ALBUMENTATIONS_UPDATE=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
WORKDIR /opt/rs5m
COPY pyproject.toml README.md ./
COPY rs5m ./rs5m
COPY tasks ./tasks
COPY flows ./flows
COPY deployments ./deployments
COPY prefect.yaml ./
RUN pip install --no-cache-dir . && pip uninstall -y dataclasses
