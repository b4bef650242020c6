# One image for every gridbus process; the command picks the process (see docker-compose.yml, k8s/).
FROM python:3.11-slim AS build
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY protos ./protos
RUN pip install --no-cache-dir --prefix=/install . \
 && mkdir -p gen \
 && PYTHONPATH=/install/lib/python3.11/site-packages python -m grpc_tools.protoc -Iprotos \
      --python_out=gen --grpc_python_out=gen $(find protos -name '*.proto')

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /app gridbus
WORKDIR /app
COPY --from=build /install /usr/local
COPY --from=build /app/gen ./gen
COPY shared ./shared
COPY services ./services
COPY demo ./demo
ENV PYTHONPATH=/app:/app/gen \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001
# Overridden per process; this one answers `docker run gridbus`.
CMD ["gridbus", "--help"]
