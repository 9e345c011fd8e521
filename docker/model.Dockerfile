# One image per pinned environment, all from this file: build arg IMAGE names the folder
# docker/<IMAGE>/requirements.lock (a card's `image: harness-<IMAGE>`; cards with the same pins share one).
# (moondream: transformers 4.48.3 + peft 0.14.0; the transformers-5 image: transformers 5.24.0 + peft 0.21.2).
#
#   docker compose build bench-qwen2vl        (after `docker compose build base`; compose passes IMAGE)
#   docker build -f docker/model.Dockerfile --build-arg IMAGE=qwen2vl -t harness-qwen2vl:0.1.0 .
ARG IMAGE
ARG BASE_IMAGE=harness-base:0.1.0

# ---------------------------------------------------------------- builder: pip over TLS, thrown away
FROM ${BASE_IMAGE} AS builder
ARG IMAGE
ARG PIP_VERSION=26.0.1
# As in docker/base/Dockerfile: pip reads these; recorded in this discarded stage only.
ARG PIP_FIND_LINKS
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
# Root for update-ca-certificates and /opt; this stage is discarded, the image below runs as the
# base's non-root user (uid 1000, `harness`).
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
# The model's packages go to their own venv, layered on the base venv through a .pth file: the
# image then ships only what this model adds, and never a second copy of torch. A package the
# lock pins differently from the base lands here and shadows the base's copy (this venv's
# site-packages comes first on sys.path).
COPY docker/${IMAGE}/requirements.lock /tmp/build/requirements.lock
RUN python -m venv /opt/model-venv \
    && purelib() { "$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; } \
    && purelib /opt/venv/bin/python > "$(purelib /opt/model-venv/bin/python)/_harness_base_venv.pth" \
    && /opt/model-venv/bin/pip install "pip==${PIP_VERSION}" \
    && /opt/model-venv/bin/pip install -r /tmp/build/requirements.lock
COPY pyproject.toml README.m[d] /tmp/src/
COPY harness /tmp/src/harness
RUN /opt/model-venv/bin/pip install --no-deps --no-build-isolation /tmp/src \
    && /opt/model-venv/bin/pip check

# ---------------------------------------------------------------- the image
FROM ${BASE_IMAGE}
ARG IMAGE
ARG HARNESS_VERSION=0.1.0
COPY --from=builder /opt/model-venv /opt/model-venv
COPY models /opt/harness/models
COPY benchmarks /opt/harness/benchmarks
COPY presets /opt/harness/presets
COPY docker/${IMAGE}/requirements.lock /opt/harness/requirements.lock
LABEL org.opencontainers.image.title="harness-${IMAGE}" \
      org.opencontainers.image.version="${HARNESS_VERSION}" \
      harness.image="${IMAGE}"
ENV VIRTUAL_ENV=/opt/model-venv \
    PATH=/opt/model-venv/bin:${PATH} \
    HARNESS_CONFIG_DIR=/opt/harness
# What every run's manifest records (harness/manifest.py): the tag this image was built as and the
# harness commit inside it (an image has no .git). Declared after the last COPY, so a new commit
# changes metadata only. The image id and registry digest exist only after the build: the docker
# runner passes them in at `docker run` (HARNESS_IMAGE_ID, HARNESS_IMAGE_DIGEST).
ARG HARNESS_IMAGE=harness-${IMAGE}:${HARNESS_VERSION}
ARG HARNESS_GIT_SHA
LABEL org.opencontainers.image.revision="${HARNESS_GIT_SHA}"
ENV HARNESS_IMAGE=${HARNESS_IMAGE} \
    HARNESS_GIT_SHA=${HARNESS_GIT_SHA}
WORKDIR /opt/harness
ENTRYPOINT ["harness"]
CMD ["--help"]
