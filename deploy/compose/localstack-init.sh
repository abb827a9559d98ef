#!/bin/sh
# LocalStack "ready" hook (mounted into /etc/localstack/init/ready.d/): seeds Secrets Manager with the
# callers' Entra client credentials, in the shape `bootstrap` reads ({"ClientId","ClientSecret","TenantId"}).
# Demo values only; they match the clients registered with the local IdP in docker-compose.yml.
set -eu
TENANT=4b1f9c2e-7d3a-4e8b-9c5f-2a6d8e0b1c3f
awslocal secretsmanager create-secret --region us-east-1 \
  --name fintech/transaction-processor/identity \
  --secret-string "{\"ClientId\":\"c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6\",\"ClientSecret\":\"compose-demo-secret-transaction-processor\",\"TenantId\":\"$TENANT\"}"
awslocal secretsmanager create-secret --region us-east-1 \
  --name fintech/reporting/identity \
  --secret-string "{\"ClientId\":\"8d2e4f60-1a3b-4c5d-9e7f-0a1b2c3d4e5f\",\"ClientSecret\":\"compose-demo-secret-reporting\",\"TenantId\":\"$TENANT\"}"
