# The service's image: gunicorn (config/gunicorn.py) serving wsgi:app as a non-root user.
#
#   docker build -t coe-template .     a public Python base image (python:3.11-slim)
#   make image                         podman, FROM a base built out of Debian packages (no image registry here)
#
# The base must give python3 with venv and CA certificates; builder and final stage use the same one,
# so the venv's interpreter link holds.
ARG BASE=python:3.11-slim

FROM ${BASE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml setup.cfg constraints.txt README.md ./
COPY coe_template/ coe_template/
COPY config/ config/
COPY handlers/ handlers/
# A real (not editable) install of the pinned versions: the venv alone runs the package.
RUN /opt/venv/bin/python -m pip install --constraint constraints.txt . \
    && /opt/venv/bin/python -m pip uninstall --yes pip

FROM ${BASE}
ARG UID=10001
# PYTHONPATH: the server (gunicorn imports wsgi.py from /app) and the CLI import the same copy of
# the code, in /app, where handlers/app.py finds openapi/ and config/settings.py config/args.json.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    COE_MODEL_STORE=/var/lib/coe/model-store
RUN useradd --uid ${UID} --user-group --home-dir /var/lib/coe --no-create-home --shell /usr/sbin/nologin coe \
    && mkdir -p /var/lib/coe/model-store \
    && chown -R ${UID}:${UID} /var/lib/coe
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY wsgi.py ./
COPY config/ config/
COPY openapi/ openapi/
COPY handlers/ handlers/
COPY coe_template/ coe_template/
COPY deploy/entrypoint.sh deploy/entrypoint.sh
# Compile once here: the code is read-only at run time (and the root filesystem may be too).
RUN python3 -m compileall -q /app
VOLUME /var/lib/coe/model-store
USER ${UID}:${UID}
EXPOSE 8000
# /livez: the process answers HTTP (on the default COE_BIND's port: change both together). The start period covers a first start (schema, training on the
# bundled data: ~5 s on 2 cores, then gunicorn loading the model) with room to spare.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=4)"]
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["gunicorn", "--config", "config/gunicorn.py", "wsgi:app"]
