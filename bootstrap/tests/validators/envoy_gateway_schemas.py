"""Writes the pinned Envoy Gateway CRD schemas `envoy_gateway_validate.py` checks against
(`envoy-gateway-crds.json` beside this file), from a checkout of envoyproxy/gateway at the pinned release.

No registry package carries Envoy Gateway's CRD schemas or models, so they are pinned here, in the
repository: the `openAPIV3Schema` of each kind `bootstrap render --format envoy-gateway` produces, taken
from the release's generated CRDs (`charts/gateway-helm/charts/crds/crds/generated/`), with the
`description` texts removed. The EnvoyProxy CRD is 1.4 MB (every Kubernetes pod and container field, the
telemetry, the bootstrap): only the subtrees under KEEP are pinned; a field elsewhere is then reported as
unknown, so rendering a new EnvoyProxy field means adding its path to KEEP and regenerating. Every
`x-kubernetes-validations` rule on the kept paths (and on their ancestors) is kept.

usage: python envoy_gateway_schemas.py GATEWAY_CHECKOUT TAG > envoy-gateway-crds.json
(`git -C GATEWAY_CHECKOUT checkout TAG` first; the output records the tag and each CRD file's SHA-256.)
"""

import hashlib
import json
import pathlib
import sys

import yaml

CRDS = "charts/gateway-helm/charts/crds/crds/generated/gateway.envoyproxy.io_{}.yaml"
KINDS = {
    "EnvoyExtensionPolicy": "envoyextensionpolicies",
    "EnvoyPatchPolicy": "envoypatchpolicies",
    "ClientTrafficPolicy": "clienttrafficpolicies",
    "EnvoyProxy": "envoyproxies",
}
# Per kind, the object paths kept whole (None: the whole schema).
KEEP = {
    "EnvoyProxy": [
        "apiVersion",
        "kind",
        "metadata",
        "spec.dynamicModules",
        "spec.provider.type",
        "spec.provider.kubernetes.envoyDeployment.container",
        "spec.provider.kubernetes.envoyDeployment.pod.volumes",
    ],
}


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def prune(node, path, keep):
    """`node` with only the properties on the way to, or under, a path in `keep`."""
    if any(path == k or path.startswith(k + ".") for k in keep):
        return node
    props = node.get("properties")
    if props is None:
        return node
    kept = {}
    for name, child in props.items():
        child_path = f"{path}.{name}".lstrip(".")
        if any(k == child_path or k.startswith(child_path + ".") for k in keep):
            kept[name] = prune(child, child_path, keep)
    out = dict(node, properties=kept)
    if "required" in out:
        out["required"] = [r for r in out["required"] if r in kept]
        if not out["required"]:
            del out["required"]
    return out


def main():
    root = pathlib.Path(sys.argv[1])
    tag = sys.argv[2]
    out = {"source": f"envoyproxy/gateway {tag}", "files": {}, "schemas": {}, "kept": KEEP}
    for kind, plural in KINDS.items():
        relative = CRDS.format(plural)
        raw = (root / relative).read_bytes()
        out["files"][relative] = hashlib.sha256(raw).hexdigest()
        crd = yaml.safe_load(raw)
        assert crd["spec"]["names"]["kind"] == kind, relative
        versions = {v["name"]: v for v in crd["spec"]["versions"]}
        schema = strip(versions["v1alpha1"]["schema"]["openAPIV3Schema"])
        if kind in KEEP:
            schema = prune(schema, "", KEEP[kind])
        out["schemas"][f"{crd['spec']['group']}/v1alpha1/{kind}"] = schema
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
