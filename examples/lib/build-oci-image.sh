#!/bin/sh
# build-oci-image.sh EXAMPLE_DIR [LINK] — builds the OCI image of one
# framework example (examples/sklearn-preprocess, …) from Debian packages and
# prints the directory it lives in (the only line on standard output;
# progress goes to standard error).
#
# EXAMPLE_DIR holds:
#   image.conf  shell: PACKAGES="Debian packages", LABELS="KEY=VALUE …" (extra
#               config labels, optional) and DEPENDS="other examples
#               whose export/ this build trains on" (optional)
#   serve       the serving program, installed as /usr/local/bin/serve
#   *.py        its modules and train.py (run at build time inside the image:
#               python3 train.py OUTDIR DEPSDIR, writing OUTDIR/model/ (→
#               model.tar.gz), OUTDIR/samples/ and OUTDIR/export/)
#
# Result, cached in $BERTH_IMAGE_CACHE (/var/cache/berth/images) as
# NAME-HASH/, HASH covering this script, examples/lib/*.py, the example's
# image.conf, serve and *.py (not walkthrough.py), and its dependencies:
#   oci/           OCI image layout, tag "latest": layer 1 the Debian root
#                  (mmdebstrap), layer 2 /usr/local (the serving program);
#                  config Entrypoint /usr/local/bin/serve, Cmd serve, Env,
#                  label ...accept-bind-to-port=true
#   rootfs/        the same image unpacked (for Image = a rootfs directory)
#   model.tar.gz   the model artifact (ModelDataUrl)
#   samples/       sample requests and the answers expected for them
#   export/        what dependent images train on
#   image.env      NAME, HASH, sizes and build time, as shell assignments
# Rebuilt only when an input changes; a warm-cache run costs a hash. The
# last build of NAME is also linked as $BERTH_IMAGE_CACHE/NAME, and as LINK
# when given. BERTH_IMAGE_PRINT_ONLY=1 prints the directory without
# building (dependencies included). Debian packages come from the host's
# own apt sources (the files in /etc/apt/sources.list{,.d/} that name the
# suite); downloaded .debs are kept in /var/cache/berth/debs for the next build.
set -eu

# The whole script is one function, parsed before it runs: editing this
# file while a build runs cannot derail that build.
main() {
usage() { echo "usage: $0 EXAMPLE_DIR [LINK]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
[ -d "$1" ] || { echo "$0: $1: not a directory" >&2; exit 1; }
[ -f "$1/image.conf" ] || { echo "$0: $1/image.conf missing" >&2; exit 1; }

lib=$(cd "$(dirname "$0")" && pwd)
ex=$(cd "$1" && pwd)
link=${2:-}
name=$(basename "$ex")
suite=bookworm
cache=${BERTH_IMAGE_CACHE:-/var/cache/berth/images}
debs=${BERTH_DEB_CACHE:-/var/cache/berth/debs}
start=$(date +%s)

say() { echo "[image $name +$(( $(date +%s) - start ))s] $*" >&2; }

PACKAGES=
DEPENDS=
LABELS= # optional: extra image config labels, KEY=VALUE words (no spaces)
. "$ex/image.conf"

# Dependencies first (each prints its directory), their names feed our hash.
dep_dirs=
for d in $DEPENDS; do
	dd=$("$0" "$ex/../$d")
	[ -n "${BERTH_IMAGE_PRINT_ONLY:-}" ] || [ -d "$dd/export" ] ||
		{ echo "$0: dependency $d has no export/" >&2; exit 1; }
	dep_dirs="$dep_dirs $dd"
done

inputs() {
	printf '%s\n' "$lib/build-oci-image.sh"
	find "$lib" -maxdepth 1 -name '*.py' | sort
	printf '%s\n' "$ex/image.conf" "$ex/serve"
	find "$ex" -maxdepth 1 -name '*.py' ! -name walkthrough.py | sort
}
hash=$( { for f in $(inputs); do
		[ -f "$f" ] || { echo "$0: $f missing" >&2; exit 1; }
		printf '%s %s\n' "$(basename "$f")" "$(sha256sum < "$f" | cut -c1-64)"
	done; printf 'suite %s\npackages %s\n' "$suite" "$PACKAGES"
	for dd in $dep_dirs; do printf 'dep %s\n' "$(basename "$dd")"; done; } |
	sha256sum | cut -c1-16)
out=$cache/$name-$hash

publish() {
	# Point $cache/NAME and LINK at $out, atomically (rename over).
	# $cache/NAME is relative: berthd resolves image paths without
	# following a link out of its image root, and an absolute link counts.
	for l in "$cache/$name" $link; do
		mkdir -p "$(dirname "$l")"
		target=$out
		[ "$l" != "$cache/$name" ] || target=$(basename "$out")
		ln -sfn "$target" "$l.tmp.$$"
		mv -T "$l.tmp.$$" "$l"
	done
	echo "$out"
}

if [ -n "${BERTH_IMAGE_PRINT_ONLY:-}" ]; then
	echo "$out"    # where the build is or would be; nothing built or linked
	exit 0
fi
if [ -f "$out/image.env" ]; then
	publish
	exit 0
fi

for t in mmdebstrap umoci flock; do
	command -v $t >/dev/null 2>&1 || { echo "$0: $t is missing (make framework-images installs it)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "$0: building images needs root (mmdebstrap, umoci)" >&2; exit 1; }

mkdir -p "$cache" "$debs"
# One build at a time on this host (they share the .deb cache and 2 cores).
exec 9>"$cache/.build.lock"
if ! flock -n 9; then
	say "waiting for another image build to finish"
	flock 9
fi
if [ -f "$out/image.env" ]; then
	exec 9>&-
	publish
	exit 0
fi

# The host's apt sources for the suite: deb822 .sources or one-line .list files.
sources=
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	grep -v '^[[:space:]]*#' "$f" | grep -qw "$suite" || continue
	sources="$sources $f"
done
[ -n "$sources" ] || { echo "$0: no apt source for $suite in /etc/apt/sources.list{,.d}" >&2; exit 1; }

tmp=$(mktemp -d "$cache/.build-$name-XXXXXX")
chmod 0755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
log=$tmp/build.log
say "building $out (log: $log while it runs)"

# The program, staged as the image's /usr/local.
stage=$tmp/stage
mkdir -p "$stage/bin" "$stage/lib/berth-example" "$tmp/deps" "$tmp/work"
cp "$lib"/*.py "$stage/lib/berth-example/"
find "$ex" -maxdepth 1 -name '*.py' ! -name walkthrough.py -exec cp {} "$stage/lib/berth-example/" \;
cp "$ex/serve" "$stage/bin/serve"
chmod 0755 "$stage/bin/serve"
for dd in $dep_dirs; do
	dn=$(basename "$dd")
	cp -a "$dd/export" "$tmp/deps/${dn%-*}"
done

# 1. An empty image, unpacked: mmdebstrap fills its rootfs, repack makes layer 1.
umoci init --layout "$tmp/oci"
umoci new --image "$tmp/oci:latest"
umoci unpack --image "$tmp/oci:latest" "$tmp/bundle" >>"$log" 2>&1
rootfs=$tmp/bundle/rootfs

say "1/5 mmdebstrap $suite: $PACKAGES (from$sources)"
pkgs=$(echo $PACKAGES | tr ' ' ',')
inchroot='chroot "$1" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp LANG=C.UTF-8 OMP_NUM_THREADS=2'
# shellcheck disable=SC2086  # $sources is a list of paths without blanks
{ mmdebstrap --variant=essential --include="$pkgs" \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/include/*' \
	--dpkgopt='path-exclude=/usr/lib/gcc/*' \
	--dpkgopt='path-exclude=/usr/lib/python3.*/config-*' \
	--dpkgopt='path-exclude=/usr/lib/libtorch-test/*' \
	--skip=essential/unlink \
	--setup-hook='mkdir -p "$1"/var/cache/apt/archives' \
	--setup-hook="sync-in $debs /var/cache/apt/archives" \
	--customize-hook="sync-out /var/cache/apt/archives $debs" \
	--customize-hook='mkdir -p "$1"/opt/ml/model "$1"/tmp/berth-build/out "$1"/tmp/berth-build/prog "$1"/tmp/berth-build/deps' \
	--customize-hook="sync-in $stage /tmp/berth-build/prog" \
	--customize-hook="sync-in $tmp/deps /tmp/berth-build/deps" \
	--customize-hook="$inchroot python3 /tmp/berth-build/prog/lib/berth-example/train.py /tmp/berth-build/out /tmp/berth-build/deps" \
	--customize-hook="sync-out /tmp/berth-build/out $tmp/work" \
	--customize-hook='rm -rf "$1"/tmp/berth-build' \
	"$suite" "$rootfs" $sources 2>&1 || echo $? > "$tmp/mmdebstrap.failed"; } |
	tee -a "$log" | sed -u -n -e 's/^I: \(downloading\|extracting\|installing\).*/  mmdebstrap: &/p' \
		-e '/^\[train\]/p' >&2
if [ -f "$tmp/mmdebstrap.failed" ]; then
	tail -n 40 "$log" >&2
	echo "$0: mmdebstrap failed (full log: $log, kept in $tmp.failed.log)" >&2
	cp "$log" "$tmp.failed.log"
	exit 1
fi
# runc makes /dev; leave the image's empty.
find "$rootfs/dev" -mindepth 1 -delete
[ -d "$tmp/work/model" ] || { echo "$0: train.py wrote no model/" >&2; exit 1; }

say "2/5 umoci repack (layer 1: Debian root, $(du -sh "$rootfs" | cut -f1))"
umoci repack --refresh-bundle --image "$tmp/oci:latest" --history.created_by "mmdebstrap $suite $PACKAGES" \
	"$tmp/bundle" >>"$log" 2>&1

# (Not `umoci insert`: Debian's umoci 0.4.7 writes it a truncated tar.)
say "3/5 umoci repack (layer 2: /usr/local, the serving program) and config"
cp -a "$stage/." "$rootfs/usr/local/"
# Byte-compiled here: the root is read-only at run time.
chroot "$rootfs" python3 -m compileall -q /usr/local/lib/berth-example >>"$log" 2>&1
umoci repack --image "$tmp/oci:latest" --history.created_by "serving program of $name" "$tmp/bundle" >>"$log" 2>&1
label_args=
for l in $LABELS; do label_args="$label_args --config.label $l"; done
# shellcheck disable=SC2086 # label_args: one word per flag and label
umoci config --image "$tmp/oci:latest" $label_args \
	--config.entrypoint /usr/local/bin/serve --config.cmd serve \
	--config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	--config.env LANG=C.UTF-8 \
	--config.env PYTHONDONTWRITEBYTECODE=1 \
	--config.env PYTHONUNBUFFERED=1 \
	--config.workingdir / \
	--config.label com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true \
	--config.label org.opencontainers.image.title="berth example $name" \
	--history.created_by "umoci config" >>"$log" 2>&1
umoci gc --layout "$tmp/oci" >>"$log" 2>&1
# Every blob must be a whole gzip'd tar (see above).
for b in "$tmp"/oci/blobs/sha256/*; do
	if gzip -t "$b" 2>/dev/null && ! gzip -dc "$b" | tar -t >/dev/null 2>>"$log"; then
		echo "$0: layer $(basename "$b") is not a whole tar archive" >&2
		exit 1
	fi
done

say "4/5 model.tar.gz"
tar --sort=name --numeric-owner --owner=0 --group=0 -C "$tmp/work/model" -czf "$tmp/model.tar.gz" .
mv "$rootfs" "$tmp/rootfs"
rm -rf "$tmp/bundle"
for d in samples export; do
	if [ -d "$tmp/work/$d" ]; then mv "$tmp/work/$d" "$tmp/$d"; else mkdir "$tmp/$d"; fi
done
rm -rf "$tmp/work" "$tmp/stage" "$tmp/deps"

say "5/5 publish"
secs=$(( $(date +%s) - start ))
{
	echo "NAME=$name"
	echo "HASH=$hash"
	echo "BUILD_SECONDS=$secs"
	echo "OCI_BYTES=$(du -sb "$tmp/oci" | cut -f1)"
	echo "ROOTFS_BYTES=$(du -sb "$tmp/rootfs" | cut -f1)"
	echo "MODEL_BYTES=$(stat -c %s "$tmp/model.tar.gz")"
	echo "PACKAGES='$PACKAGES'"
} > "$tmp/image.env"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
exec 9>&-
# Keep the two newest builds of NAME (a running endpoint may use the one before).
ls -1dt "$cache/$name"-???????????????? 2>/dev/null | tail -n +3 | while read -r old; do
	say "removing old build $old"
	rm -rf "$old"
done
say "done in ${secs}s: oci $(du -sh "$out/oci" | cut -f1), rootfs $(du -sh "$out/rootfs" | cut -f1), model.tar.gz $(du -sh "$out/model.tar.gz" | cut -f1)"
publish
}

main "$@"; exit $?
