# The entragate filter as an OCI Wasm image (a single layer holding plugin.wasm), the form
# Istio's WasmPlugin (`url: oci://...`) and Envoy Gateway (`code.type: Image`) pull.
# Build from the repository root:  docker build -f deploy/docker/filter.Dockerfile -t entragate-filter .
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN rustup target add wasm32-wasip1 && apt-get update && apt-get install -y --no-install-recommends binaryen && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked --target wasm32-wasip1 -p entragate-filter \
 && wasm-opt -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int \
      target/wasm32-wasip1/release/entragate_filter.wasm -o /plugin.wasm

FROM scratch
COPY --from=build /plugin.wasm /plugin.wasm
