# netweave's container image: the O2-IMS gateway, run as a non-root user.
#
#   docker build -t registry.example.net/o2/netweave:0.1.0 .    (or podman, buildah, kaniko)
#   docker build --build-arg EXTRAS=operator -t registry.example.net/o2/netweave-operator:0.1.0 .
#
# EXTRAS names optional parts to install with the gateway: "operator" (kopf) for the image
# `netweave operator` runs from (deploy/operator/deployment.yaml).
#
# Stage 1 builds netweave's wheel and the wheels of its dependencies, at the versions
# requirements/constraints.txt pins (the same the tests run with); stage 2 installs them
# offline, so the final image holds no compiler, no build tool and no source tree. The
# base image is pinned to an exact Python and Debian release: rebuild and bump it for
# security updates. Nothing secret is built in: certificates, keys, the Redis URL and
# the settings come at run time (NETWEAVE_* variables and mounted files).

FROM python:3.11.13-slim-bookworm AS build
ARG EXTRAS=""

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/constraints.txt requirements/constraints.txt
COPY src ./src
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && wheel=$(ls /wheels/netweave-*.whl) \
 && pip wheel --wheel-dir /wheels --constraint requirements/constraints.txt \
      "${wheel}${EXTRAS:+[$EXTRAS]}"

FROM python:3.11.13-slim-bookworm
ARG EXTRAS=""

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    # In a container the gateway must listen beyond loopback; it still refuses to start
    # until authentication is configured (or NETWEAVE_INSECURE=true), see docs/security.md.
    NETWEAVE_HOST=0.0.0.0

COPY requirements/constraints.txt /tmp/constraints.txt
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels --constraint /tmp/constraints.txt \
      "netweave${EXTRAS:+[$EXTRAS]}" \
 && rm /tmp/constraints.txt \
 && groupadd --system --gid 10001 netweave \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin netweave

# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080

# /healthz is public and answers 200 while the process is up. Over HTTPS when a
# certificate is configured; the certificate names the service, not 127.0.0.1, so it is
# not verified here (this is the container asking itself). With
# NETWEAVE_TLS_CLIENT_CERT_MODE=required the handshake needs a client certificate and
# this check fails: Kubernetes ignores HEALTHCHECK (the chart's probes apply), other
# runtimes need --no-healthcheck then.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, ssl, urllib.request as r; tls = bool(os.environ.get('NETWEAVE_TLS_CERT_FILE')); url = ('https' if tls else 'http') + '://127.0.0.1:' + os.environ.get('NETWEAVE_PORT', '8080') + '/healthz'; r.urlopen(url, timeout=4, context=ssl._create_unverified_context() if tls else None)"]

ENTRYPOINT ["netweave"]
CMD ["serve"]
