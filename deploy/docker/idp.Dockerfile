# The local Entra-compatible identity provider (tests/src/bin/idp.rs) for the compose demo:
# Entra's URL layout (discovery, JWKS, client-credentials token endpoint), keys generated at start.
# Not for production: point the mesh policy at real Entra ID instead (docs/deploy.md).
# Build from the repository root:  docker build -f deploy/docker/idp.Dockerfile -t entragate-idp .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p entragate-tests --bin idp

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 idp
COPY --from=build /src/target/release/idp /usr/local/bin/idp
USER 10001
ENTRYPOINT ["/usr/local/bin/idp"]
