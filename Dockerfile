# voice-bridge container image. The build steps live in scripts/build-image-root.sh (CI runs
# the same script); this file only gives them a toolchain and copies the result into a slim
# runtime image without one.
#
#   docker build -t voice-bridge:0.1.0 .
#   docker run --rm -p 8080:8080 -e TWILIO_AUTH_TOKEN=… -e BRIDGE_PUBLIC_URL=https://… voice-bridge:0.1.0
#
# Node 22 LTS; the builder adds Rust (rustup, minimal profile) for the DSP addon.
FROM node:22-bookworm AS build
RUN curl -fsSL https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain stable
ENV PATH="/root/.cargo/bin:${PATH}"
WORKDIR /src
COPY . .
RUN bash scripts/build-image-root.sh /app

FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    BRIDGE_DATA_DIR=/data
# The outbox and local records live in /data (a volume: they survive the container).
RUN mkdir -p /data && chown node:node /data
COPY --from=build --chown=root:root /app /app
USER node
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# A drain on SIGTERM: calls run to their end (BRIDGE_DRAIN_TIMEOUT_MS), then a goodbye;
# give `docker stop` a timeout above it (docker stop -t 90).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "/app/node_modules/voice-bridge/dist/cli.js"]
CMD ["start"]
