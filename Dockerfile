# syntax=docker/dockerfile:1
# The production image: one image for all five services (they share kaiwa_common and the
# generated contracts); each Deployment picks its service with
# `python -m kaiwa_<service>.main` and migrates first with
# `python -m kaiwa_common.migrate_only <service>` (deploy/base).
#
# Two stages: `build` installs the runtime requirements only (picked from requirements.in
# by deploy/tools/runtime_requirements.py: up to "# Tests", without the local dev servers;
# versions pinned by requirements.lock) into a virtualenv and generates the contracts; the
# final stage copies the virtualenv and the code without tests, runs as a non-root user and
# needs no writable root filesystem (bytecode is compiled at build time; /tmp is an
# emptyDir in the manifests). tests/deploy/test_plat05_image.py checks it without Docker.

FROM python:3.11-slim AS build
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.in requirements.lock deploy/tools/runtime_requirements.py ./
RUN python runtime_requirements.py requirements.in requirements.lock . \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install -c constraints.txt -r requirements-runtime.in setuptools
COPY pyproject.toml ./
COPY protos ./protos
COPY services ./services
RUN rm -rf services/*/tests \
    && mkdir gen && /opt/venv/bin/python -m grpc_tools.protoc -Iprotos --python_out=gen --pyi_out=gen \
        --grpc_python_out=gen $(find protos/kaiwa -name '*.proto') \
    && find gen/kaiwa -type d -exec touch {}/__init__.py \; \
    && /opt/venv/bin/pip install --no-deps --no-build-isolation -e . \
    && /opt/venv/bin/python -m compileall -q /app/gen /app/services /opt/venv

FROM python:3.11-slim AS runtime
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH KAIWA_HOST=0.0.0.0
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app/pyproject.toml /app/pyproject.toml
COPY --from=build /app/gen /app/gen
COPY --from=build /app/services /app/services
# gRPC 50051-50055 (one per service), Prometheus metrics 9464.
EXPOSE 50051 50052 50053 50054 50055 9464
USER 65532:65532
CMD ["python", "-m", "kaiwa_common.cli"]
