# Infrastream as a container image: `docker build -t infrastream:0.1.0 .`
#
# Two stages. The first builds the wheel of this repository; the second installs only that
# wheel (and its runtime dependencies from the package index) on a slim Python, with git for
# the gitops target, and runs `infrastream serve` as an unprivileged numeric user. The data
# directory is a volume; on Kubernetes (deploy/kubernetes/) it is an emptyDir, and the state
# that matters lives in PostgreSQL. tests/packaging/test_wheel_install.py runs the two pip
# steps below outside Docker and starts the installed server and demo.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
RUN apt-get update \
    && apt-get install --yes --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 infrastream \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/infrastream \
       --shell /usr/sbin/nologin infrastream \
    && install --directory --owner 10001 --group 10001 --mode 0700 /var/lib/infrastream
COPY --from=wheel /wheels /wheels
RUN python -m pip install --no-cache-dir /wheels/infrastream-*.whl \
    && rm -rf /wheels
ENV INFRASTREAM_DATA_DIR=/var/lib/infrastream \
    HOME=/var/lib/infrastream \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /var/lib/infrastream
VOLUME ["/var/lib/infrastream"]
EXPOSE 8420
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8420/api/v1/healthz', timeout=4)"]
ENTRYPOINT ["infrastream"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8420"]
