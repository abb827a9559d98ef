# The FinTech demo applications (examples/fintech/services): `fraud-detector` and
# `transaction-processor`. Neither contains any authentication code.
# Build from the repository root:  docker build -f deploy/docker/services.Dockerfile -t fintech-services .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p fintech-services

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 app
COPY --from=build /src/target/release/fraud-detector /usr/local/bin/fraud-detector
COPY --from=build /src/target/release/transaction-processor /usr/local/bin/transaction-processor
USER 10001
