# syntax=docker/dockerfile:1
# The mlops server image: `mlops server` with PostgreSQL, S3 and the /ui dashboard.
#   docker build -t mlops:0.1.0 .
#   docker run -p 8000:8000 -e MLOPS_DATABASE_URL=postgresql://… mlops:0.1.0
# See docs/cluster.md for the compose quick start and the Kubernetes manifests.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-deps --wheel-dir /dist .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MLOPS_HOME=/var/lib/mlops
# A fixed numeric id, so Kubernetes can check runAsNonRoot (the manifests use 10001).
RUN groupadd --system --gid 10001 mlops \
    && useradd --system --uid 10001 --gid mlops --home-dir /var/lib/mlops --create-home \
        --shell /usr/sbin/nologin mlops
COPY --from=build /dist/ /tmp/dist/
RUN set -eux; \
    wheel="$(ls /tmp/dist/mlops-*.whl)"; \
    pip install "${wheel}[postgres,s3,ui]"; \
    rm -rf /tmp/dist
USER 10001:10001
WORKDIR /var/lib/mlops
EXPOSE 8000
# No curl in the slim image: ask /health/live with the standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4).status == 200 else 1)"]
CMD ["mlops", "server", "--host", "0.0.0.0", "--port", "8000"]
