#!/usr/bin/env bash
# make run: start berthd and berth-router (if not already running) and
# create the demo endpoint: two echo containers in Direct mode. berthd
# checks every call's SigV4 signature against the keys of its credentials
# file: when the file has no key, an admin key is made first (and printed).
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
STATE=${BERTH_STATE_DIR:-/var/lib/berth}
RUN=${BERTH_RUN_DIR:-/run/berth}
PORT=${BERTH_PORT:-8080}
CRED=${BERTH_CREDENTIALS:-/etc/berth/credentials}
REGION=us-east-1
URL="http://127.0.0.1:$PORT"
LOGS=$STATE/logs
IMAGE=$BUILD/images/echo/rootfs
mkdir -p "$STATE" "$RUN" "$LOGS" "$STATE/object-store"

if [ "$(id -u)" != 0 ]; then
	echo "berth: make run needs root (runc, namespaces, cgroups)" >&2
	exit 1
fi

"$(dirname "$0")/first-key.sh" "$BUILD/berth" "$CRED" "$URL"

# The demo's own calls sign with the first key allowed sagemaker:* (or *).
read -r KEY_NAME KEY_ID KEY_SECRET < <(awk '
	function flush() { if (!found && name != "" && id != "" && secret != "" && all) { print name, id, secret; found = 1 } }
	/^[ \t]*\[/ { flush(); name = $0; gsub(/^[ \t]*\[|\][ \t]*$/, "", name); id = secret = ""; all = 0; next }
	/^[ \t]*aws_access_key_id[ \t]*=/ { id = $0; sub(/^[^=]*=[ \t]*/, "", id); sub(/[ \t]+$/, "", id) }
	/^[ \t]*aws_secret_access_key[ \t]*=/ { secret = $0; sub(/^[^=]*=[ \t]*/, "", secret); sub(/[ \t]+$/, "", secret) }
	/^[ \t]*allow[ \t]*=/ { v = $0; sub(/^[^=]*=/, "", v); n = split(v, w, /[ \t]+/)
		for (i = 1; i <= n; i++) if (w[i] == "sagemaker:*" || w[i] == "*") all = 1 }
	END { flush() }' "$CRED") || true
if [ -z "${KEY_SECRET:-}" ]; then
	echo "berth: $CRED has no key allowed sagemaker:* for the demo's calls; add one:" \
		"$BUILD/berth keys add NAME --allow 'sagemaker:*' --credentials $CRED" >&2
	exit 1
fi

# berthd binds the router's port itself and runs berth-router on it as an
# unprivileged user, restarting it if it dies (the production layout).
if ! [ -S "$RUN/berthd.sock" ] || ! "$BUILD/berth" --socket "$RUN/berthd.sock" ls >/dev/null 2>&1; then
	if curl -sf "$URL/ping" >/dev/null 2>&1; then
		echo "berth: something already answers on $URL but berthd is not running on $RUN;" \
			"stop it or choose another port with BERTH_PORT=N" >&2
		exit 1
	fi
	echo "starting berthd with berth-router on 127.0.0.1:$PORT (state $STATE, log $LOGS/berthd.log)"
	# the demo's image lives in the build tree: allow it (berthd accepts
	# local images only under its image roots)
	setsid "$BUILD/berthd" --state-dir "$STATE" --run-dir "$RUN" --object-store-root "$STATE/object-store" \
		--image-root "$BUILD/images" --image-root /var/cache/berth/images \
		--credentials "$CRED" --listen "127.0.0.1:$PORT" </dev/null >>"$LOGS/berthd.log" 2>&1 &
fi
for _ in $(seq 200); do curl -sf "$URL/ping" >/dev/null 2>&1 && break; sleep 0.05; done
curl -sf "$URL/ping" >/dev/null || { echo "berth-router did not come up; see $LOGS/berthd.log" >&2; exit 1; }

call() { # OPERATION JSON, signed as boto3 signs it
	curl -s -X POST "$URL/" -H "X-Amz-Target: SageMaker.$1" \
		--aws-sigv4 "aws:amz:$REGION:sagemaker" --user "$KEY_ID:$KEY_SECRET" \
		-H 'Content-Type: application/x-amz-json-1.1' -d "$2"
	echo
}
if ! "$BUILD/berth" --socket "$RUN/berthd.sock" describe demo >/dev/null 2>&1; then
	call CreateModel '{"ModelName":"demo-model","InferenceExecutionConfig":{"Mode":"Direct"},
	  "Containers":[{"ContainerHostname":"echo","Image":"'"$IMAGE"'"},
	                {"ContainerHostname":"upper","Image":"'"$IMAGE"'","Environment":{"ECHO_MODE":"upper"}}]}'
	call CreateEndpointConfig '{"EndpointConfigName":"demo-config","ProductionVariants":[{"VariantName":"AllTraffic",
	  "ModelName":"demo-model","InitialInstanceCount":1,"InstanceType":"ml.m5.large"}]}'
	call CreateEndpoint '{"EndpointName":"demo","EndpointConfigName":"demo-config"}'
fi
"$BUILD/berth" --socket "$RUN/berthd.sock" ls
for _ in $(seq 300); do
	"$BUILD/berth" --socket "$RUN/berthd.sock" describe demo 2>/dev/null | grep -q '"EndpointStatus": "InService"' && break
	sleep 0.1
done
# InService says the endpoint exists; after a restart of berthd (a reboot,
# make stop STOP_CONTAINERS=1) its containers may still be starting again:
# wait until each one is healthy, or say why not.
for i in $(seq 300); do
	down=$("$BUILD/berth" --socket "$RUN/berthd.sock" ps 2>/dev/null | awk '$1 == "demo" && $7 != "healthy"' | wc -l)
	[ "$down" = 0 ] && break
	if [ "$i" = 300 ]; then
		echo "berth: the demo's containers are not healthy after 30 s:" >&2
		"$BUILD/berth" --socket "$RUN/berthd.sock" ps >&2
		"$BUILD/berth" --socket "$RUN/berthd.sock" describe demo | grep FailureReason >&2 || true
		echo "see $LOGS/berthd.log" >&2
		exit 1
	fi
	sleep 0.1
done
printf '\nberth invoke demo --target-container upper <<< "hello berth" (signed with key "%s"): ' "$KEY_NAME"
"$BUILD/berth" --socket "$RUN/berthd.sock" invoke demo --url "$URL" --credentials "$CRED" --key "$KEY_NAME" \
	--target-container upper <<< 'hello berth'

cat <<MSG

berth is running: router $URL, berthd socket $RUN/berthd.sock, logs in $LOGS.
Every call is signed with a key of $CRED (here key "$KEY_NAME"; berth keys ls lists them).

  $BUILD/berth --socket $RUN/berthd.sock invoke demo --url $URL --credentials $CRED --target-container upper <<< 'hello'
  $BUILD/berth --socket $RUN/berthd.sock ps

  # the aws CLI and boto3 read the same file (AWS credentials shape, one profile a key):
  AWS_SHARED_CREDENTIALS_FILE=$CRED AWS_PROFILE=$KEY_NAME aws --region $REGION --endpoint-url $URL sagemaker describe-endpoint --endpoint-name demo

  AWS_SHARED_CREDENTIALS_FILE=$CRED AWS_PROFILE=$KEY_NAME /usr/bin/python3 -c 'import boto3
rt = boto3.client("sagemaker-runtime", endpoint_url="$URL", region_name="$REGION")
r = rt.invoke_endpoint(EndpointName="demo", TargetContainerHostname="upper", Body=b"hello", ContentType="text/plain")
print(r["Body"].read())'

  # curl signs too (HTTP/2 with prior knowledge here), with the key's id and secret:
  curl -s --http2-prior-knowledge --aws-sigv4 aws:amz:$REGION:sagemaker --user "\$AWS_ACCESS_KEY_ID:\$AWS_SECRET_ACCESS_KEY" \\
    -H 'X-Amzn-SageMaker-Target-Container-Hostname: upper' -d 'hello berth' $URL/endpoints/demo/invocations
MSG
