# The `bootstrap` CLI/agent plus the entragate filter module, in one image:
#   - `bootstrap agent`  (caller sidecar: Secrets Manager -> Entra tokens -> local Envoy)
#   - `bootstrap render` (renders Envoy configs from mesh.yaml; the module is at
#                         /usr/share/entragate/entragate_filter.wasm for --wasm)
# Build from the repository root:  docker build -f deploy/docker/bootstrap.Dockerfile -t entragate-bootstrap .
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN rustup target add wasm32-wasip1 && apt-get update && apt-get install -y --no-install-recommends binaryen && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked -p entragate-bootstrap \
 && cargo build --release --locked --target wasm32-wasip1 -p entragate-filter \
 && wasm-opt -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int \
      target/wasm32-wasip1/release/entragate_filter.wasm -o /entragate_filter.wasm

FROM debian:bookworm-slim
# ca-certificates: TLS to login.microsoftonline.com and Secrets Manager; curl: health checks.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 entragate \
 && mkdir --parents /run/entragate && chown 10001:10001 /run/entragate
COPY --from=build /src/target/release/bootstrap /usr/local/bin/bootstrap
COPY --from=build /entragate_filter.wasm /usr/share/entragate/entragate_filter.wasm
# The sidecar volume `bootstrap render --format ecs|kubernetes` mounts here: the render step writes the
# configurations and the agent key, the agent and Envoy (all uid 10001) read them. Declared with its
# owner so ECS Fargate creates the task volume owned by 10001 instead of root (AWS: bind mount
# permissions "can be customized in the Dockerfile").
VOLUME ["/run/entragate"]
USER 10001
ENTRYPOINT ["/usr/local/bin/bootstrap"]
CMD ["--help"]
