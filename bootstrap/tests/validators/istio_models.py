"""Validates Istio resources (a multi-document YAML file) against PyPI `cloudcoil-models-istio`: pydantic
models generated from Istio's CRD schemas. Each document must validate as the model of its apiVersion/kind,
carry no field the schema does not know (wherever the model would keep or drop one), and survive the round
trip through the model unchanged. Prints `<Kind> ok` per document; exits non-zero on the first problem.

usage: python istio_models.py FILE
"""

import sys

import pydantic
import yaml
from cloudcoil.models.istio.extensions import v1alpha1 as extensions
from cloudcoil.models.istio.networking import v1 as networking
from cloudcoil.models.istio.security import v1 as security

MODELS = {
    ("extensions.istio.io/v1alpha1", "WasmPlugin"): extensions.WasmPlugin,
    ("networking.istio.io/v1", "ServiceEntry"): networking.ServiceEntry,
    ("networking.istio.io/v1", "DestinationRule"): networking.DestinationRule,
    ("security.istio.io/v1", "PeerAuthentication"): security.PeerAuthentication,
}


def extras(model, path="") -> list:
    """Fields a model accepted without knowing them (models that allow extra fields keep them here)."""
    found = []
    if isinstance(model, pydantic.BaseModel):
        for key in (model.model_extra or {}):
            found.append(f"{path}.{key}".lstrip("."))
        for name in type(model).model_fields:
            found += extras(getattr(model, name), f"{path}.{name}")
    elif isinstance(model, (list, tuple)):
        for i, item in enumerate(model):
            found += extras(item, f"{path}[{i}]")
    elif isinstance(model, dict):
        for key, item in model.items():
            found += extras(item, f"{path}.{key}")
    return found


def differences(expected, actual, path="") -> list:
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual)):
            if key not in actual:
                out.append(f"{path}.{key}: dropped by the schema (unknown field?)")
            elif key not in expected:
                out.append(f"{path}.{key}: added by the schema")
            else:
                out += differences(expected[key], actual[key], f"{path}.{key}")
        return out
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        out = []
        for i, (e, a) in enumerate(zip(expected, actual)):
            out += differences(e, a, f"{path}[{i}]")
        return out
    return [] if expected == actual else [f"{path}: {expected!r} became {actual!r}"]


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        documents = [d for d in yaml.safe_load_all(f) if d is not None]
    for doc in documents:
        key = (doc.get("apiVersion"), doc.get("kind"))
        model = MODELS.get(key)
        if model is None:
            print(f"no Istio model for {key}", file=sys.stderr)
            return 1
        try:
            parsed = model.model_validate(doc)
        except pydantic.ValidationError as e:
            print(f"{key[1]}: {e}", file=sys.stderr)
            return 1
        problems = [f"{p}: not in the schema" for p in extras(parsed)]
        dumped = parsed.model_dump(mode="json", by_alias=True, exclude_unset=True)
        problems += differences(doc, dumped)
        if problems:
            print(f"{key[1]}:\n  " + "\n  ".join(problems), file=sys.stderr)
            return 1
        print(f"{key[1]} ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
