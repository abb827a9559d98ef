"""Registers ECS task definitions (JSON files, `RegisterTaskDefinition` request shape) with the ECS API at
ENDPOINT, a local moto server, through boto3. botocore validates every request against AWS's own ECS
service model before sending it (unknown members, types, enums, required members); moto then stores it.
Prints what was registered; exits non-zero on the first rejection.

usage: python ecs_register.py ENDPOINT FILE...
"""

import json
import sys

import boto3


def main() -> int:
    endpoint, files = sys.argv[1], sys.argv[2:]
    ecs = boto3.client(
        "ecs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    for path in files:
        with open(path, encoding="utf-8") as f:
            request = json.load(f)
        registered = ecs.register_task_definition(**request)["taskDefinition"]
        described = ecs.describe_task_definition(taskDefinition=registered["taskDefinitionArn"])
        containers = [c["name"] for c in described["taskDefinition"]["containerDefinitions"]]
        print(f"{path}: registered {registered['taskDefinitionArn']} containers={','.join(containers)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
