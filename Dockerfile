# One image for the worker and the API (docker-compose.yml picks the command).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY integrationos ./integrationos
RUN pip install --no-cache-dir ".[postgres,redis]"
ENV IOS_DATA_DIR=/data
VOLUME ["/data"]
ENTRYPOINT ["integrationos"]
