#!/bin/sh
# build-image.sh BIN OUTDIR — makes the echo serving image from the static
# binary BIN:
#   OUTDIR/rootfs/         a minimal root (/serve, /proc, /dev, /sys, /tmp,
#                          /etc/{hostname,passwd,group,resolv.conf},
#                          /opt/ml/model, /opt/ml/models)
#   OUTDIR/rootfs.tar.gz   the same tree as a rootfs tarball
# Idempotent: does nothing when both exist and BIN is not newer than them.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 BIN OUTDIR" >&2
	exit 2
fi
bin=$1
out=$2
[ -f "$bin" ] || { echo "$0: $bin: no such file" >&2; exit 1; }

root=$out/rootfs
tarball=$out/rootfs.tar.gz
if [ -x "$root/serve" ] && [ -f "$tarball" ] &&
   [ ! "$bin" -nt "$root/serve" ] && [ ! "$root/serve" -nt "$tarball" ] &&
   [ ! "$0" -nt "$tarball" ]; then
	exit 0
fi

mkdir -p "$out"
# Build beside the target and swap, so a reader never sees half a tree.
tmp=$(mktemp -d "$out/.rootfs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/rootfs"
cd "$tmp/rootfs"
mkdir -p proc dev sys tmp etc opt/ml/model opt/ml/models var/log var/run
chmod 1777 tmp
echo echo > etc/hostname
echo 'root:x:0:0:root:/root:/serve' > etc/passwd
echo 'root:x:0:' > etc/group
: > etc/resolv.conf
cd - >/dev/null
cp "$bin" "$tmp/rootfs/serve"
chmod 0755 "$tmp/rootfs/serve"

# Deterministic-ish tarball: numeric root owner, sorted names.
tar --sort=name --numeric-owner --owner=0 --group=0 -C "$tmp/rootfs" -czf "$tmp/rootfs.tar.gz" .

rm -rf "$root.old"
[ -e "$root" ] && mv "$root" "$root.old"
mv "$tmp/rootfs" "$root"
mv "$tmp/rootfs.tar.gz" "$tarball"
rm -rf "$root.old"
echo "echo image: $root and $tarball"
