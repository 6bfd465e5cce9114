# shellcheck shell=bash
# Finds (or provides) a Node.js that can run weir: Node >= 22.22 that can load uWebSockets.js.
#
#   weir_node_dir   -> prints the directory holding that `node` binary (put it first on PATH)
#
# Provisioning, cached under $WEIR_CACHE_DIR (default ~/.cache/weir) so later runs are instant:
#   1. the host's node, when it is new enough and the host's glibc is >= 2.38 (or the host is not Linux);
#   2. else Node 24 from the npm registry (package node-<os>-<arch>@24);
#   3. and, only on Linux hosts whose glibc is older than 2.38 (uWebSockets.js 20.55+ needs GLIBC_2.38),
#      a copy of that binary whose ELF interpreter and rpath point at Debian 13's C runtime, fetched with a
#      private apt configuration (the system's apt sources are not touched).

WEIR_CACHE_DIR="${WEIR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weir}"
WEIR_NODE_MAJOR=24
WEIR_MIN_NODE="22.22.0"
WEIR_MIN_GLIBC="2.38"

weir_log() { printf '[weir] %s\n' "$*" >&2; }
weir_die() { printf '[weir] error: %s\n' "$*" >&2; exit 1; }

# version_ge A B: true when dotted version A >= B
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

weir_host_glibc() {
  # Empty on non-glibc hosts (macOS, musl).
  if command -v getconf >/dev/null 2>&1; then
    getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}'
  fi
}

weir_needs_c_runtime() {
  [ "$(uname -s)" = "Linux" ] || return 1
  local glibc
  glibc="$(weir_host_glibc)"
  [ -n "$glibc" ] || return 1
  ! version_ge "$glibc" "$WEIR_MIN_GLIBC"
}

weir_npm_node_package() {
  local os arch
  case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    *) weir_die "unsupported OS $(uname -s): install Node.js >= $WEIR_MIN_NODE yourself" ;;
  esac
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) weir_die "unsupported CPU $(uname -m): install Node.js >= $WEIR_MIN_NODE yourself" ;;
  esac
  printf 'node-%s-%s' "$os" "$arch"
}

# Node 24 from the npm registry; prints its bin directory.
weir_fetch_node() {
  local pkg dir
  pkg="$(weir_npm_node_package)"
  dir="$WEIR_CACHE_DIR/node$WEIR_NODE_MAJOR"
  if [ ! -x "$dir/node_modules/$pkg/bin/node" ]; then
    command -v npm >/dev/null 2>&1 ||
      weir_die "Node.js >= $WEIR_MIN_NODE is needed and npm is not available to fetch it: install Node.js $WEIR_NODE_MAJOR (https://nodejs.org)"
    weir_log "fetching Node $WEIR_NODE_MAJOR from the npm registry ($pkg) into $dir"
    mkdir -p "$dir"
    npm install --silent --no-save --no-package-lock --ignore-scripts --prefix "$dir" "$pkg@$WEIR_NODE_MAJOR" >&2 ||
      weir_die "could not install $pkg@$WEIR_NODE_MAJOR from the npm registry"
  fi
  printf '%s' "$dir/node_modules/$pkg/bin"
}

# Debian 13 (trixie) C runtime + a patched copy of the Node binary; prints the copy's bin directory.
weir_patch_node_for_old_glibc() {
  local src_bin="$1" root="$WEIR_CACHE_DIR/node$WEIR_NODE_MAJOR-glibc"
  local out="$root/bin/node" stamp="$root/.complete"
  if [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$("$src_bin/node" -v)" ]; then
    printf '%s' "$root/bin"
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 ||
    weir_die "this host's glibc ($(weir_host_glibc)) is older than $WEIR_MIN_GLIBC, which uWebSockets.js needs, and apt-get/dpkg are not available to fetch a newer C runtime: run on a host with glibc >= $WEIR_MIN_GLIBC (Debian 13, Ubuntu 24.04) or macOS"
  weir_log "host glibc $(weir_host_glibc) < $WEIR_MIN_GLIBC: fetching Debian 13's C runtime for a private Node copy (one time)"
  local apt="$root/apt" rt="$root/runtime"
  rm -rf "$root"
  mkdir -p "$apt/sources" "$apt/lists/partial" "$apt/cache/archives/partial" "$rt" "$root/bin" "$root/debs"
  local uri="http://deb.debian.org/debian" keyring="/usr/share/keyrings/debian-archive-keyring.gpg"
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    # Same mirror and key as the system's own Debian sources, only the suite differs.
    local sys_uri sys_key
    sys_uri="$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
    sys_key="$(awk '/^Signed-By:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
    [ -n "$sys_uri" ] && uri="$sys_uri"
    [ -n "$sys_key" ] && keyring="$sys_key"
  fi
  cat >"$apt/sources/trixie.sources" <<EOF
Types: deb
URIs: $uri
Suites: trixie bookworm
Components: main
Signed-By: $keyring
EOF
  local opts=(-qq -oDir::Etc::SourceList=/dev/null "-oDir::Etc::SourceParts=$apt/sources"
    "-oDir::State::Lists=$apt/lists" "-oDir::Cache=$apt/cache" -oDebug::NoLocking=1
    -oAPT::Sandbox::User=root)
  apt-get "${opts[@]}" update >&2 || weir_die "apt-get update for Debian trixie failed (is deb.debian.org reachable?)"
  (cd "$root/debs" && apt-get "${opts[@]}" download libc6/trixie libstdc++6/trixie libgcc-s1/trixie patchelf/bookworm >&2) ||
    weir_die "could not download libc6, libstdc++6, libgcc-s1 (Debian 13) and patchelf (Debian 12)"
  local deb
  for deb in "$root"/debs/*.deb; do
    case "$(basename "$deb")" in
      patchelf_*) dpkg -x "$deb" "$root/patchelf" ;;
      *) dpkg -x "$deb" "$rt" ;;
    esac
  done
  local lib="$rt/usr/lib/x86_64-linux-gnu"
  [ "$(uname -m)" = "aarch64" ] && lib="$rt/usr/lib/aarch64-linux-gnu"
  local ld
  ld="$(ls "$lib"/ld-linux-*.so.* 2>/dev/null | head -n1)"
  [ -n "$ld" ] || weir_die "Debian trixie's libc6 did not contain a dynamic loader under $lib"
  cp "$src_bin/node" "$out"
  # Debian 12's patchelf (0.14) runs on the host's own libc; 0.18 (Debian 13) produces a Node binary that
  # crashes at start ("stack smashing detected").
  "$root/patchelf/usr/bin/patchelf" --set-interpreter "$ld" --set-rpath "$lib" "$out" ||
    weir_die "patchelf failed on $out"
  "$out" -v >/dev/null || weir_die "the patched Node binary $out does not start"
  rm -rf "$root/debs" "$root/patchelf" "$apt/cache"
  "$src_bin/node" -v >"$stamp"
  weir_log "private Node ready: $out ($("$out" -v) on Debian 13's C runtime)"
  printf '%s' "$root/bin"
}

weir_node_dir() {
  local host_ok=0 dir
  if command -v node >/dev/null 2>&1; then
    local v
    v="$(node -v 2>/dev/null | sed 's/^v//')"
    if [ -n "$v" ] && version_ge "$v" "$WEIR_MIN_NODE"; then host_ok=1; fi
  fi
  if [ "$host_ok" = 1 ] && ! weir_needs_c_runtime; then
    dirname "$(command -v node)"
    return 0
  fi
  dir="$(weir_fetch_node)" || exit 1
  if weir_needs_c_runtime; then
    dir="$(weir_patch_node_for_old_glibc "$dir")" || exit 1
  fi
  printf '%s' "$dir"
}
