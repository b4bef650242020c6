# One image for every gridbus process; the command picks the process (see docker-compose.yml, k8s/).

# The console's page and the officer's app, built from the packages pinned in its lock file.
FROM node:20-slim AS web
WORKDIR /web
COPY services/console/web/package.json services/console/web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY services/console/web/index.html services/console/web/officer.html services/console/web/vite.config.js ./
COPY services/console/web/src ./src
COPY services/console/web/officer ./officer
COPY services/console/web/public ./public
RUN npm run build

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
# The console's photo directory, owned by the process's user (a new named volume takes its owner).
RUN useradd --system --uid 10001 --home-dir /app gridbus \
 && mkdir -p /var/lib/gridbus/attachments && chown 10001:10001 /var/lib/gridbus/attachments
WORKDIR /app
COPY --from=build /install /usr/local
COPY --from=build /app/gen ./gen
COPY shared ./shared
COPY services ./services
COPY --from=web /web/dist ./services/console/web/dist
COPY demo ./demo
ENV PYTHONPATH=/app:/app/gen \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001
# Overridden per process; this one answers `docker run gridbus`.
CMD ["gridbus", "--help"]
