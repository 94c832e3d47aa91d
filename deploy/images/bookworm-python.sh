#!/usr/bin/env bash
# Build a Debian bookworm base image with Debian's Python 3.11, for building
# Tandem's images where no container registry is reachable (`make base-images`).
#
#   deploy/images/bookworm-python.sh IMAGE CACHE_DIR
#
# The root filesystem comes from debootstrap (Debian's own packages, fetched
# through this machine's apt mirror) and is imported with `docker import`, so
# no image is pulled. With registry access, use the official
# python:3.11-slim-bookworm instead: the Dockerfiles default to it.
#
# The same image serves as the core's builder and runtime base: a virtualenv
# points at its interpreter by path, so both stages must have Python at the
# same place (/usr/bin/python3.11 here, /usr/local/bin in the official image).
#
# The rootfs tarball is cached in CACHE_DIR (debootstrap takes a few minutes);
# delete it to rebuild from current packages.
set -euo pipefail

image=${1:?usage: $0 IMAGE CACHE_DIR}
cache=${2:?usage: $0 IMAGE CACHE_DIR}
suite=bookworm
# minbase: essential packages and apt only. python3-venv brings ensurepip's
# bundled pip wheel, which the image build uses to install the wheelhouse.
packages=python3,python3-venv
mkdir -p "$cache"
tarball="$cache/$suite-python-rootfs.tar"

# The mirror apt already uses on this machine (deb822 or one-line format),
# unless DEBIAN_MIRROR says otherwise.
mirror_from_apt() {
  local uri
  uri=$(awk '/^URIs:/ && !found { print $2; found = 1 }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [[ -z $uri && -r /etc/apt/sources.list ]]; then
    uri=$(awk '$1 == "deb" && $0 ~ / bookworm / { print ($2 ~ /^\[/ ? $3 : $2); exit }' /etc/apt/sources.list)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

if [[ ! -s $tarball ]]; then
  command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install -y debootstrap" >&2; exit 1; }
  mirror=${DEBIAN_MIRROR:-$(mirror_from_apt)}
  rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
  # --one-file-system: should debootstrap be interrupted with /proc still
  # mounted inside the rootfs, the clean-up must not descend into it.
  trap 'rm -rf --one-file-system "$rootfs"' EXIT
  echo "debootstrap $suite ($packages) from $mirror"
  debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror"
  # Nothing an image needs: package lists and downloaded .debs, docs, man pages.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*
  find "$rootfs"/usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
  # Write to a temporary name first so an interrupted run leaves no half tarball.
  tar --numeric-owner -C "$rootfs" -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
fi

docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  --message "debootstrap --variant=minbase --include=$packages $suite" \
  "$tarball" "$image"
echo "built $image from $tarball"
