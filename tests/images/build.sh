#!/usr/bin/env bash
# Builds the Docker image the rbk Docker tests run: rbk-test/debian:1, a Debian bookworm
# (minbase) root filesystem with PostgreSQL 15, Python 3 + zstandard, sqlite3 and the
# stand-in programs under rootfs/ (see README.md beside this file).
#
# No image registry is reachable here, so nothing is pulled: the root filesystem comes from
# Debian's package mirror through debootstrap and enters Docker through `docker import`.
#
# Two levels, both cached in the Docker engine itself:
#   rbk-test/debian-base:<hash of the package set>   debootstrap + apt packages (slow, ~minutes)
#   rbk-test/debian:1                                 base + rootfs/ (seconds)
# The final image carries a label with the hash of everything it was made from (this script
# and rootfs/), so an edited stand-in rebuilds the top level even if nobody bumps the tag.
# Re-running with nothing changed exits at once.
#
# Usage: tests/images/build.sh [--force]        (as root; no TTY needed)
# Env:   RBK_DEBIAN_MIRROR   override the mirror (default: the Debian mirror apt uses here)
#        RBK_IMAGE_TAG       override the final tag (default rbk-test/debian:1)
set -euo pipefail

IMAGE_TAG="${RBK_IMAGE_TAG:-rbk-test/debian:1}"
BASE_REPO="rbk-test/debian-base"
SUITE=bookworm
# What goes into the base level. Changing this list (or the base steps below) changes the
# base hash and so rebuilds everything.
PACKAGES=(postgresql-15 postgresql-client-15 python3-minimal python3-zstandard sqlite3 procps zstd)
LABEL_KEY="org.rbk.test.content-hash"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
force=0
[ "${1:-}" = "--force" ] && force=1

t0=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
log() { echo "build.sh: $*" >&2; }

export DEBIAN_FRONTEND=noninteractive LC_ALL=C

# ---- hashes: decide what (if anything) needs building --------------------------------------
# Base hash: the package list, the suite and the base-building function's own text.
base_recipe() {
  printf '%s\n' "$SUITE" "${PACKAGES[@]}"
  sed -n '/^# ---- base level begin/,/^# ---- base level end/p' "$here/build.sh"
}
base_hash="$(base_recipe | sha256sum | cut -c1-16)"
BASE_TAG="$BASE_REPO:$base_hash"
content_hash="$( {
  echo "$base_hash"
  sha256sum <"$here/build.sh"
  (cd "$here/rootfs" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
  (cd "$here/rootfs" && find . -type l -printf '%p -> %l\n' | LC_ALL=C sort)
} | sha256sum | cut -c1-16)"

current() { docker image inspect --format "{{ index .Config.Labels \"$LABEL_KEY\" }}" "$IMAGE_TAG" 2>/dev/null || true; }
if [ "$force" = 0 ] && [ "$(current)" = "$content_hash" ]; then
  log "$IMAGE_TAG is up to date (content $content_hash); nothing to do ($(elapsed "$t0")s)"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "build.sh: must run as root (debootstrap and chroot need it)" >&2
  exit 1
fi

# One build at a time (tests may call this script concurrently); whoever waited re-checks.
exec 9>/var/lock/rbk-test-image-build.lock
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
fi
have="$(current)"
if [ "$force" = 0 ] && [ "$have" = "$content_hash" ]; then
  log "$IMAGE_TAG was built meanwhile (content $content_hash); nothing to do ($(elapsed "$t0")s)"
  exit 0
fi
[ -n "$have" ] && log "$IMAGE_TAG exists but was built from other content ($have != $content_hash); rebuilding"
old_id="$(docker image inspect --format '{{.Id}}' "$IMAGE_TAG" 2>/dev/null || true)"

# The Debian mirror apt uses here: the first http(s) URI of a bookworm "debian" archive
# (not -security) in /etc/apt/sources.list or sources.list.d/*.{list,sources}.
find_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    case "$f" in
      *.sources)
        # deb822: one stanza per blank-line-separated block
        awk 'BEGIN { RS=""; FS="\n" }
             { uris=""; suites=""
               for (i = 1; i <= NF; i++) {
                 if ($i ~ /^URIs:/)   { sub(/^URIs:[ \t]*/, "", $i); uris = $i }
                 if ($i ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", $i); suites = $i }
               }
               if (suites ~ /(^| )bookworm( |$)/) { split(uris, u, " "); print u[1] } }' "$f"
        ;;
      *)
        awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                           if ($(i+1) == "bookworm") print $i }' "$f"
        ;;
    esac
  done | grep -E '^https?://' | grep -v -- '-security' | grep -E '/debian/?$' | head -n1
}
MIRROR="${RBK_DEBIAN_MIRROR:-$(find_mirror || true)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"

# ---- base level begin ----------------------------------------------------------------------
build_base() {
  local tb rootfs
  tb=$(date +%s.%N)
  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    apt-get install -y -qq debootstrap >/dev/null 2>&1 || {
      apt-get update -qq
      apt-get install -y -qq debootstrap >/dev/null
    }
  fi
  rootfs="$(mktemp -d /var/tmp/rbk-rootfs.XXXXXX)"
  chmod 0755 "$rootfs" # mktemp makes it 0700: it becomes the image's /
  # Everything below runs in a private mount namespace, so /proc inside the chroot can never
  # outlive this script (and `rm -rf` below can never reach a mounted /proc).
  cleanup_rootfs() { rm -rf --one-file-system "$rootfs"; }
  trap cleanup_rootfs EXIT

  log "debootstrap --variant=minbase $SUITE from $MIRROR"
  debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 || {
    tail -n 30 "$rootfs.log" >&2
    log "debootstrap failed (full log: $rootfs.log)"
    exit 1
  }
  rm -f "$rootfs.log"
  log "debootstrap done ($(elapsed "$tb")s)"

  # Keep the image small: no docs, man pages or translations from here on.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/01-rbk-nodoc" <<'CFG'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-exclude=/usr/share/lintian/*
CFG
  cat >"$rootfs/etc/apt/apt.conf.d/01-rbk" <<'CFG'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Check-Valid-Until "false";
Acquire::Languages "none";
CFG
  # No service may start inside the chroot.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
  # The image runs one server per container; the entrypoint makes the data directory itself.
  mkdir -p "$rootfs/etc/postgresql-common/createcluster.d"
  echo "create_main_cluster = false" >"$rootfs/etc/postgresql-common/createcluster.d/00-rbk.conf"

  log "apt-get install ${PACKAGES[*]}"
  local ta
  ta=$(date +%s.%N)
  cat >"$rootfs/var/tmp/rbk-install.sh" <<'SH'
#!/bin/sh
set -eu
apt-get update -qq
apt-get install -y -qq "$@" >/var/tmp/apt.log 2>&1 || { tail -n 40 /var/tmp/apt.log >&2; exit 1; }
SH
  unshare --mount --fork sh -euc '
    r="$1"; shift
    mount -t proc proc "$r/proc"
    exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
      DEBIAN_FRONTEND=noninteractive LC_ALL=C sh /var/tmp/rbk-install.sh "$@"
  ' sh "$rootfs" "${PACKAGES[@]}"
  log "apt-get done ($(elapsed "$ta")s)"

  # Trim. PostgreSQL's JIT (LLVM, 130 MB) is never used by the tests: drop it (postgresql.conf
  # gets jit = off from the entrypoint), leaving dpkg's dependency record deliberately broken.
  chroot "$rootfs" dpkg --purge --force-depends libllvm14 libz3-4 >/dev/null 2>&1
  rm -rf "$rootfs"/usr/lib/postgresql/15/lib/llvmjit* "$rootfs"/usr/lib/postgresql/15/lib/bitcode
  # Locale sources (the image uses C.UTF-8, built into glibc), apt lists and caches, docs that
  # came with debootstrap, logs.
  rm -rf "$rootfs"/usr/share/i18n/*
  rm -f "$rootfs/usr/sbin/policy-rc.d" "$rootfs/var/tmp/apt.log" "$rootfs/var/tmp/rbk-install.sh"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
         "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/root/.cache
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
  : >"$rootfs/etc/hostname"
  : >"$rootfs/etc/resolv.conf"
  rm -f "$rootfs/etc/machine-id" "$rootfs/var/lib/dbus/machine-id"

  log "docker import -> $BASE_TAG"
  local ti
  ti=$(date +%s.%N)
  tar --numeric-owner --one-file-system -C "$rootfs" -c . |
    docker import --message "rbk test base: debootstrap $SUITE minbase + ${PACKAGES[*]}" - "$BASE_TAG" >/dev/null
  cleanup_rootfs
  trap - EXIT
  log "import done ($(elapsed "$ti")s); base level built in $(elapsed "$tb")s"
}
# ---- base level end ------------------------------------------------------------------------

if ! docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
  build_base
  # Older base levels are dead weight now (untagged here; freed once no image uses them).
  docker image ls --format '{{.Repository}}:{{.Tag}}' "$BASE_REPO" | grep -vxF "$BASE_TAG" |
    xargs -r docker image rm >/dev/null 2>&1 || true
  log "(cleanup at $(elapsed "$t0")s)"
else
  log "base $BASE_TAG cached"
fi

# ---- top level: base + rootfs/ --------------------------------------------------------------
tt=$(date +%s.%N)
stage="$(mktemp -d /var/tmp/rbk-stage.XXXXXX)"
ctr=""
cleanup_top() {
  rm -rf "$stage"
  [ -n "$ctr" ] && docker rm -f "$ctr" >/dev/null 2>&1 || true
}
trap cleanup_top EXIT
cp -a "$here/rootfs/." "$stage/"
# Executables regardless of how the checkout recorded modes.
chmod 0755 "$stage"/usr/local/bin/* "$stage"/startup/*
ctr="$(docker create "$BASE_TAG" /bin/true)"
tar --owner=0 --group=0 --numeric-owner -C "$stage" -c . | docker cp - "$ctr:/"
docker commit \
  --message "rbk test image: stand-ins from tests/images/rootfs ($content_hash)" \
  --change "LABEL $LABEL_KEY=$content_hash" \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/lib/postgresql/15/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  "$ctr" "$IMAGE_TAG" >/dev/null
log "top level built in $(elapsed "$tt")s"
# The image this one replaces is dangling now; drop it unless a container still uses it.
[ -n "$old_id" ] && docker image rm "$old_id" >/dev/null 2>&1 || true
size="$(docker image inspect --format '{{.Size}}' "$IMAGE_TAG")"
log "$IMAGE_TAG ready (content $content_hash, $((size / 1024 / 1024)) MiB) in $(elapsed "$t0")s"
