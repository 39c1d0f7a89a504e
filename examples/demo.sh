#!/usr/bin/env bash
# make run: start berthd and berth-router (if not already running) and
# create the demo endpoint: two echo containers in Direct mode.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
STATE=${BERTH_STATE_DIR:-/var/lib/berth}
RUN=${BERTH_RUN_DIR:-/run/berth}
PORT=${BERTH_PORT:-8080}
URL="http://127.0.0.1:$PORT"
LOGS=$STATE/logs
IMAGE=$BUILD/images/echo/rootfs
mkdir -p "$STATE" "$RUN" "$LOGS" "$STATE/object-store"

if [ "$(id -u)" != 0 ]; then
	echo "berth: make run needs root (runc, namespaces, cgroups)" >&2
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
		--listen "127.0.0.1:$PORT" </dev/null >>"$LOGS/berthd.log" 2>&1 &
fi
for _ in $(seq 200); do curl -sf "$URL/ping" >/dev/null 2>&1 && break; sleep 0.05; done
curl -sf "$URL/ping" >/dev/null || { echo "berth-router did not come up; see $LOGS/berthd.log" >&2; exit 1; }

call() { # OPERATION JSON
	curl -s -X POST "$URL/" -H "X-Amz-Target: SageMaker.$1" \
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

cat <<MSG

berth is running: router $URL, berthd socket $RUN/berthd.sock, logs in $LOGS.

  curl -s $URL/endpoints/demo/invocations -H 'X-Amzn-SageMaker-Target-Container-Hostname: upper' -d 'hello berth'
  # HTTP/2 with prior knowledge:
  echo hi > /tmp/berth-body; nghttp -H :method:\ POST -H "x-amzn-sagemaker-target-container-hostname: echo" -d /tmp/berth-body $URL/endpoints/demo/invocations

  AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x aws --region us-east-1 --endpoint-url $URL sagemaker describe-endpoint --endpoint-name demo

  /usr/bin/python3 -c 'import boto3
rt = boto3.client("sagemaker-runtime", endpoint_url="$URL", region_name="us-east-1",
                  aws_access_key_id="x", aws_secret_access_key="x")
r = rt.invoke_endpoint(EndpointName="demo", TargetContainerHostname="upper", Body=b"hello", ContentType="text/plain")
print(r["Body"].read())'

  $BUILD/berth --socket $RUN/berthd.sock invoke demo --target-container upper <<< 'hello'
  $BUILD/berth --socket $RUN/berthd.sock ps
MSG
