# One image for all five services: they share kaiwa_common and the generated contracts.
# Each Deployment picks its service with `python -m kaiwa_<service>.main` (deploy/base).
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY pyproject.toml ./
COPY protos ./protos
COPY services ./services
RUN mkdir gen && python -m grpc_tools.protoc -Iprotos --python_out=gen --pyi_out=gen \
        --grpc_python_out=gen $(find protos -name '*.proto') \
    && find gen/kaiwa -type d -exec touch {}/__init__.py \; \
    && pip install --no-cache-dir --no-deps --no-build-isolation -e .
USER 65532:65532
ENV KAIWA_HOST=0.0.0.0
