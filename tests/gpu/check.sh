#!/bin/sh
# tests/gpu/check.sh — by hand, as root, on a host with NVIDIA GPUs: do
# berth's GPU instance types give each endpoint instance its own GPU?
#
#   BERTH_BUILD=/path/to/build sh tests/gpu/check.sh
#
# It uses the host's CDI spec (/etc/cdi, /var/run/cdi) when one defines
# nvidia.com/gpu devices, and otherwise writes a minimal spec of its own
# from /dev/nvidia* and the driver's nvidia-smi and libraries (ldconfig -p).
# It builds a small image from berth's echo server, /bin/sh and the
# libraries nvidia-smi links against (copied from the host), whose `serve`
# runs `nvidia-smi -L` from the driver the spec mounts; starts a berthd and
# router of its own (state under /var/tmp, --auth none on 127.0.0.1);
# (CPU and memory over-commit set high, so only GPUs can run out) creates
# two ml.g5.xlarge endpoints (one when the host has a single GPU),
# checks that each lists exactly one GPU and that they differ, and that one
# more endpoint asking for more devices than are left is refused with
# ResourceLimitExceeded. No network, no packages. It cleans up after
# itself (endpoints, processes, directories) whatever happens.
set -eu

say() { printf 'check.sh: %s\n' "$*"; }
die() { printf 'check.sh: FAIL: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run me as root (berthd needs it)"
build=${BERTH_BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}
for b in berthd berth-router berth-shim echo-serve; do
	[ -x "$build/$b" ] || die "$build/$b is missing: run make (or set BERTH_BUILD)"
done
smi=$(command -v nvidia-smi) || die "nvidia-smi is not on PATH: is the NVIDIA driver installed?"
gpus=0
for n in /dev/nvidia[0-9]*; do
	[ -c "$n" ] && gpus=$((gpus + 1))
done
[ "$gpus" -ge 1 ] || die "no /dev/nvidiaN device nodes on this host"
say "host: $gpus GPU(s); nvidia-smi at $smi"

work=$(mktemp -d /var/tmp/berth-gpu-check.XXXXXX)
chmod 0711 "$work"
run=$(mktemp -d /run/berth-gpu-check.XXXXXX)
berthd_pid=''
router_pid=''
port=''
cleanup() {
	set +e
	if [ -n "$port" ] && [ -n "$berthd_pid" ]; then
		for ep in gpu-check-1 gpu-check-2 gpu-check-3; do
			call DeleteEndpoint "{\"EndpointName\":\"$ep\"}" >/dev/null 2>&1
		done
		i=0
		while [ $i -lt 60 ] && call ListEndpoints '{}' 2>/dev/null | grep -q gpu-check-; do
			sleep 1
			i=$((i + 1))
		done
	fi
	[ -n "$router_pid" ] && kill "$router_pid" 2>/dev/null && wait "$router_pid" 2>/dev/null
	[ -n "$berthd_pid" ] && kill "$berthd_pid" 2>/dev/null && wait "$berthd_pid" 2>/dev/null
	umount -R "$work/state" 2>/dev/null
	rm -rf "$work" "$run"
	say "cleaned up $work and $run"
}
trap cleanup EXIT INT TERM

# call OPERATION JSON — a control-plane call; prints the body, returns non-zero on an HTTP error
call() {
	curl -sS --max-time 60 -o "$work/reply" -w '%{http_code}' -X POST "http://127.0.0.1:$port/" \
		-H "Content-Type: application/x-amz-json-1.1" -H "X-Amz-Target: SageMaker.$1" --data "$2" >"$work/status"
	cat "$work/reply"
	[ "$(cat "$work/status")" = 200 ]
}

# ---- the CDI spec ------------------------------------------------------------
spec_args=
if grep -lqs 'nvidia.com/gpu' /etc/cdi/*.json /etc/cdi/*.yaml /var/run/cdi/*.json /var/run/cdi/*.yaml; then
	say "using the host's CDI spec: $(grep -ls 'nvidia.com/gpu' /etc/cdi/* /var/run/cdi/* 2>/dev/null | tr '\n' ' ')"
else
	mkdir -p "$work/cdi"
	spec=$work/cdi/nvidia.json
	{
		printf '{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":['
		sep=
		for n in /dev/nvidia[0-9]*; do
			i=${n#/dev/nvidia}
			printf '%s{"name":"%s","containerEdits":{"deviceNodes":[{"path":"%s"}]}}' "$sep" "$i" "$n"
			sep=,
		done
		printf '],"containerEdits":{"deviceNodes":['
		sep=
		for n in /dev/nvidiactl /dev/nvidia-uvm /dev/nvidia-uvm-tools; do
			[ -c "$n" ] || continue
			printf '%s{"path":"%s"}' "$sep" "$n"
			sep=,
		done
		printf '],"mounts":[{"hostPath":"%s","containerPath":"/usr/bin/nvidia-smi","options":["ro","nosuid","nodev","bind"]}' "$smi"
		libdirs=
		for lib in $(ldconfig -p | awk '/libnvidia-ml\.so|libcuda\.so/ {print $NF}' | sort -u); do
			real=$(readlink -f "$lib")
			printf ',{"hostPath":"%s","containerPath":"%s","options":["ro","nosuid","nodev","bind"]}' "$real" "$lib"
			libdirs="$libdirs:$(dirname "$lib")"
		done
		printf '],"env":["LD_LIBRARY_PATH=%s"]}}\n' "${libdirs#:}"
	} >"$spec"
	chmod 0644 "$spec"
	spec_args="--cdi-spec-dir $work/cdi"
	say "wrote a CDI spec from the host's devices and driver: $spec"
fi

# ---- the image: echo + /bin/sh + what nvidia-smi links against ----------------
root=$work/images/gpu/rootfs
mkdir -p "$root/usr/local/bin" "$root/usr/bin" "$root/bin" "$root/tmp" "$root/proc" "$root/dev" "$root/sys" \
	"$root/etc" "$root/opt/ml/model"
chmod 1777 "$root/tmp"
cp "$build/echo-serve" "$root/serve"
cp /bin/sh "$root/bin/sh"
for lib in $( (ldd /bin/sh; ldd "$smi") 2>/dev/null | awk '/=> \// {print $3} /^\t\// {print $1}' | sort -u); do
	case $(basename "$lib") in libnvidia*|libcuda*) continue ;; esac
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
cat >"$root/usr/local/bin/serve" <<'EOF'
#!/bin/sh
/usr/bin/nvidia-smi -L >/tmp/gpus 2>&1
echo "exit=$?" >>/tmp/gpus
exec /serve "$@"
EOF
chmod 0755 "$root/usr/local/bin/serve"
chmod -R go+rX "$work/images"
say "built the image $root"

# ---- berthd and its router -----------------------------------------------------
port=$(awk 'BEGIN { srand(); print 20000 + int(rand() * 20000) }')
# shellcheck disable=SC2086
"$build/berthd" --state-dir "$work/state" --run-dir "$run" --auth none --image-root "$work/images" \
	--cpu-overcommit 1000 --memory-overcommit 1000 $spec_args >"$work/berthd.log" 2>&1 &
berthd_pid=$!
i=0
while [ ! -S "$run/berthd.sock" ]; do
	[ $i -lt 100 ] || die "berthd did not start: $(tail -5 "$work/berthd.log")"
	kill -0 "$berthd_pid" 2>/dev/null || die "berthd exited: $(tail -5 "$work/berthd.log")"
	sleep 0.1
	i=$((i + 1))
done
"$build/berth-router" --listen "127.0.0.1:$port" --berthd-socket "$run/berthd.sock" >"$work/router.log" 2>&1 &
router_pid=$!
i=0
until curl -s --max-time 2 "http://127.0.0.1:$port/ping" >/dev/null; do
	[ $i -lt 100 ] || die "the router did not answer /ping: $(tail -5 "$work/router.log")"
	sleep 0.1
	i=$((i + 1))
done
say "berthd (pid $berthd_pid) and router on 127.0.0.1:$port"
"$build/berth" --socket "$run/berthd.sock" devices

# ---- two endpoints, each its own GPU ---------------------------------------------
want=2
[ "$gpus" -ge 2 ] || want=1
image="$root"
call CreateModel "{\"ModelName\":\"gpu-check\",\"ExecutionRoleArn\":\"arn:aws:iam::000000000000:role/x\",
	\"PrimaryContainer\":{\"Image\":\"$image\",\"Environment\":{\"ECHO_MODE\":\"file\"}}}" >/dev/null ||
	die "CreateModel: $(cat "$work/reply")"
call CreateEndpointConfig '{"EndpointConfigName":"gpu-check","ProductionVariants":[{"VariantName":"AllTraffic",
	"ModelName":"gpu-check","InitialInstanceCount":1,"InstanceType":"ml.g5.xlarge"}]}' >/dev/null ||
	die "CreateEndpointConfig: $(cat "$work/reply")"
uuids=
k=1
while [ $k -le $want ]; do
	ep=gpu-check-$k
	call CreateEndpoint "{\"EndpointName\":\"$ep\",\"EndpointConfigName\":\"gpu-check\"}" >/dev/null ||
		die "CreateEndpoint $ep: $(cat "$work/reply")"
	i=0
	until call DescribeEndpoint "{\"EndpointName\":\"$ep\"}" | grep -q '"EndpointStatus":"InService"'; do
		grep -q '"EndpointStatus":"Failed"' "$work/reply" && die "$ep failed: $(cat "$work/reply")"
		[ $i -lt 120 ] || die "$ep not InService after 120 s"
		sleep 1
		i=$((i + 1))
	done
	out=$(curl -sS --max-time 30 -X POST "http://127.0.0.1:$port/endpoints/$ep/invocations" --data 'read /tmp/gpus')
	say "$ep: nvidia-smi -L says:"
	printf '%s\n' "$out" | sed 's/^/    /'
	n=$(printf '%s\n' "$out" | grep -c '^GPU [0-9]*:' || true)
	[ "$n" = 1 ] || die "$ep sees $n GPUs, not exactly its own one"
	uuid=$(printf '%s\n' "$out" | sed -n 's/.*(UUID: \(.*\))/\1/p')
	case " $uuids " in *" $uuid "*) die "$ep sees GPU $uuid, which another endpoint holds" ;; esac
	uuids="$uuids $uuid"
	k=$((k + 1))
done
say "each endpoint sees exactly its own GPU:$uuids"

# ---- one more than the host has left ----------------------------------------------
left=$((gpus - want))
if [ $left -gt 0 ]; then
	call CreateEndpointConfig "{\"EndpointConfigName\":\"gpu-check-more\",\"ProductionVariants\":[{
		\"VariantName\":\"AllTraffic\",\"ModelName\":\"gpu-check\",\"InitialInstanceCount\":$((left + 1)),
		\"InstanceType\":\"ml.g5.xlarge\"}]}" >/dev/null || die "CreateEndpointConfig: $(cat "$work/reply")"
	cfg=gpu-check-more
else
	cfg=gpu-check
fi
if call CreateEndpoint "{\"EndpointName\":\"gpu-check-3\",\"EndpointConfigName\":\"$cfg\"}" >/dev/null; then
	die "a third endpoint asking for more GPUs than are left was accepted"
fi
grep -q '"__type":"ResourceLimitExceeded".*nvidia.com/gpu' "$work/reply" ||
	die "expected ResourceLimitExceeded about nvidia.com/gpu devices: $(cat "$work/reply")"
say "one more endpoint is refused: $(cat "$work/reply")"
"$build/berth" --socket "$run/berthd.sock" devices
say "PASS"
