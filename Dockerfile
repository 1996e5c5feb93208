# One image for every coffeetrace process (api, ingest, migrate, broker-config, simulator).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY coffeetrace coffeetrace
COPY cli cli
COPY ingest ingest
COPY api api
COPY trace trace
COPY simulators simulators
COPY migrations migrations
RUN pip install . && useradd --system --uid 10001 coffeetrace \
    && mkdir -p /data /keys && chown coffeetrace /data /keys && chmod 0700 /keys
USER coffeetrace
ENV COFFEETRACE_DATA_DIR=/data
EXPOSE 8000 9108
CMD ["coffeetrace", "api"]
