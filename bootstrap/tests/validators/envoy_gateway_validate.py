"""Validates Envoy Gateway resources (a multi-document YAML file) as the Kubernetes API server would with
Envoy Gateway's CRDs installed, against the CRD schemas pinned in `envoy-gateway-crds.json`
(`envoy_gateway_schemas.py` writes it from an envoyproxy/gateway release):

1. defaults applied (`default`), as the API server does before validating;
2. the OpenAPI schema (types, `required`, enums, patterns, lengths, item counts) through `jsonschema`;
3. no field the schema does not know (`kubectl apply --validate=strict`), except under
   `x-kubernetes-preserve-unknown-fields` (e.g. a dynamic module's `config`);
4. every `x-kubernetes-validations` CEL rule, evaluated with `cel-python` (transition rules, which need
   `oldSelf`, only apply to updates and are skipped).

Prints `<Kind> ok` per document; exits non-zero listing every problem.

usage: python envoy_gateway_validate.py FILE
"""

import copy
import json
import pathlib
import sys

import celpy
import jsonschema
import yaml

PINNED = pathlib.Path(__file__).with_name("envoy-gateway-crds.json")


def apply_defaults(schema, value):
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
            if name in value:
                apply_defaults(child, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for item in value.values():
                apply_defaults(extra, item)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(schema["items"], item)


def unknown_fields(schema, value, path):
    found = []
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return found
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            if props is not None and name in props:
                found += unknown_fields(props[name], item, f"{path}.{name}")
            elif isinstance(extra, dict):
                found += unknown_fields(extra, item, f"{path}.{name}")
            elif props is not None or extra is False:
                found.append(f"{path}.{name}: unknown field (not in the pinned CRD schema)")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found += unknown_fields(schema["items"], item, f"{path}[{i}]")
    return found


CEL = celpy.Environment()
PROGRAMS = {}


def program(rule):
    """The compiled rule (compiled once: compiling dominates the run time)."""
    if rule not in PROGRAMS:
        PROGRAMS[rule] = CEL.program(CEL.compile(rule))
    return PROGRAMS[rule]


def cel_rules(schema, value, path):
    found = []
    for rule in schema.get("x-kubernetes-validations", []):
        if "oldSelf" in rule["rule"]:
            continue  # a transition rule: updates only
        try:
            result = program(rule["rule"]).evaluate({"self": celpy.json_to_cel(value)})
        except Exception as e:  # a rule this evaluator cannot run must not pass silently
            found.append(f"{path}: cannot evaluate {rule['rule']!r}: {e}")
            continue
        if result is not True and not (isinstance(result, celpy.celtypes.BoolType) and bool(result)):
            found.append(f"{path}: {rule.get('message', 'rule failed')} ({rule['rule']})")
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            if name in value:
                found += cel_rules(child, value[name], f"{path}.{name}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, item in value.items():
                found += cel_rules(extra, item, f"{path}.{name}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found += cel_rules(schema["items"], item, f"{path}[{i}]")
    return found


def main():
    pinned = json.loads(PINNED.read_text())
    problems = []
    with open(sys.argv[1]) as f:
        documents = [d for d in yaml.safe_load_all(f) if d is not None]
    if not documents:
        problems.append("no documents")
    for doc in documents:
        key = f"{doc.get('apiVersion')}/{doc.get('kind')}"
        schema = pinned["schemas"].get(key)
        if schema is None:
            problems.append(f"{key}: not an Envoy Gateway kind the pinned schemas know")
            continue
        where = f"{doc['kind']} {doc.get('metadata', {}).get('name')}"
        doc = copy.deepcopy(doc)
        apply_defaults(schema, doc)
        found = [
            f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
            for e in jsonschema.Draft7Validator(schema).iter_errors(doc)
        ]
        found += unknown_fields(schema, doc, "")
        found += cel_rules(schema, doc, "")
        if found:
            problems += [f"{where}: {p}" for p in found]
        else:
            print(f"{doc['kind']} ok ({pinned['source']})")
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
