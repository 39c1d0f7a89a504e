#!/usr/bin/env bash
# first-key.sh BERTH CREDENTIALS URL — make run and make install: when the
# credentials file CREDENTIALS has no key yet, creates one admin key
# (berth keys add admin --allow 'sagemaker:*') and prints how boto3 and the
# aws CLI call URL with it. The secret is printed this once. A file that has
# keys already is left alone.
set -euo pipefail
BERTH=$1
CRED=$2
URL=$3
REGION=${AWS_REGION:-us-east-1}

if grep -qs '^[[:space:]]*\[' "$CRED"; then
	exit 0
fi
out=$("$BERTH" keys add admin --allow 'sagemaker:*' --credentials "$CRED")
id=$(sed -n 's/^aws_access_key_id = //p' <<<"$out")
secret=$(sed -n 's/^aws_secret_access_key = //p' <<<"$out")
if [ -z "$id" ] || [ -z "$secret" ]; then
	echo "berth: berth keys add printed no key: $out" >&2
	exit 1
fi
cat <<MSG

Created the admin key "admin" (allow = sagemaker:*) in $CRED.
Its secret is shown only now; berth keys add NAME makes more keys (berth keys ls lists them).

  AWS_ACCESS_KEY_ID=$id AWS_SECRET_ACCESS_KEY=$secret aws --endpoint-url $URL --region $REGION sagemaker list-endpoints

  import boto3
  kw = dict(endpoint_url="$URL", region_name="$REGION",
            aws_access_key_id="$id", aws_secret_access_key="$secret")
  sm, rt = boto3.client("sagemaker", **kw), boto3.client("sagemaker-runtime", **kw)
MSG
