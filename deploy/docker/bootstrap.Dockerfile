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
 && useradd --system --uid 10001 entragate
COPY --from=build /src/target/release/bootstrap /usr/local/bin/bootstrap
COPY --from=build /entragate_filter.wasm /usr/share/entragate/entragate_filter.wasm
USER 10001
ENTRYPOINT ["/usr/local/bin/bootstrap"]
CMD ["--help"]
