# syntax=docker/dockerfile:1
# weir image: the worker is the entry point; the gateway runs from the same image with --entrypoint (docs/worker.md).
# Debian 13 (trixie) has glibc 2.41, which uWebSockets.js 20.57 needs (>= 2.38).
# Build:        docker build -t weir .
# Run a worker: docker run --rm -e KAFKA_BOOTSTRAP_SERVERS=kafka:9092 -v $PWD/my-topology.ts:/app/topology.ts weir \
#                 worker /app/topology.ts --application-id my-app
# The gateway:  docker run --rm --entrypoint node -p 8080:8080 -e WEIR_HTTP_PORT=8080 -e KAFKA_BOOTSTRAP_SERVERS=kafka:9092 \
#                 -e WEIR_SESSION_SECRET -e WEIR_JWT_HS256_SECRET -v $PWD/catalog.json:/app/catalog.json weir \
#                 /app/gateway/main.ts --catalog /app/catalog.json
#               (WEIR_HTTP_PORT points the HEALTHCHECK at the gateway's own /health.)
#               Large payloads (docs/payloads.md): add a blob store and its secret, e.g.
#                 -e WEIR_GATEWAY_BLOBS_S3_BUCKET=my-blobs -e WEIR_GATEWAY_BLOBS_S3_ENDPOINT=http://minio:9000 \
#                 -e WEIR_S3_ACCESS_KEY_ID -e WEIR_S3_SECRET_ACCESS_KEY -e WEIR_GATEWAY_BLOBS_SECRET
#               (--blobs-fs-root DIR on a volume for one machine; uploads wait on disk in --blobs-spool-dir, default /tmp).
# Not built on the project's development machines: they have no Docker engine.

FROM node:24-trixie-slim AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# Production dependencies only; optional testcontainers is not needed at run time.
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund

FROM node:24-trixie-slim AS runtime
ENV NODE_ENV=production \
    WEIR_STATE_DIR=/var/lib/weir \
    WEIR_HTTP_PORT=9464
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json index.ts testing.ts ./
COPY core ./core
COPY envelope ./envelope
COPY blobs ./blobs
COPY commands ./commands
COPY kafka ./kafka
COPY state ./state
COPY topology ./topology
COPY processors ./processors
COPY gateway ./gateway
COPY worker ./worker
RUN mkdir -p /var/lib/weir && chown node:node /var/lib/weir
USER node
EXPOSE 9464
VOLUME ["/var/lib/weir"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.WEIR_HTTP_PORT||9464)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "/app/worker/cli.ts"]
CMD ["--help"]
