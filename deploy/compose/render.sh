#!/bin/sh
# Renders every sidecar of the compose demo from examples/fintech/mesh.yaml into /config
# (a volume the Envoys and agents mount). All containers share one network namespace, so the policy is
# pointed at the local IdP and at the Fraud Detector's sidecar on loopback. For the same reason the hop
# between the sidecars never leaves the namespace's loopback, so this demo renders `transport.mode=plaintext`
# (`bootstrap check` warns); a deployment across hosts keeps the default mtls (docs/mesh-policy.md, "Transport").
# Run by the `render` service of docker-compose.yml with the entragate-bootstrap image.
set -eu
WASM=/usr/share/entragate/entragate_filter.wasm
cp "$WASM" /config/entragate_filter.wasm
for service in fraud-detector transaction-processor reporting; do
  bootstrap render --policy /policy/mesh.yaml --service "$service" --format envoy \
    --wasm /config/entragate_filter.wasm \
    --set "services.$service.sidecar.agent_key_file=/config/$service.agent-key" \
    --set identity_provider.authority=http://127.0.0.1:9400 \
    --set services.fraud-detector.host=127.0.0.1 \
    --set transport.mode=plaintext \
    --out /config
done
ls -l /config
