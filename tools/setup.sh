# Shared set-up for tools/demo, tools/test and the other tools: sourced, not run.
# Installs the system packages Courier needs when they are missing, then points SwiftPM at
# a copy of libzmq's pkg-config file without its Requires.private line (Debian's pulls in
# krb5's -isystem flags, which SwiftPM rejects with a warning; libzmq needs none of them).
set -euo pipefail

COURIER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$COURIER_ROOT"

courier_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

courier_install_system_packages() {
    local missing=()
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists libzmq; } || missing+=(libzmq3-dev)
    [ ${#missing[@]} -eq 0 ] && return 0
    courier_log "installing ${missing[*]} with apt-get"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "error: need root or sudo to install ${missing[*]}" >&2; exit 1; }
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

courier_pkgconfig_path() {
    local dir="$COURIER_ROOT/.build-pkgconfig"
    mkdir -p "$dir"
    sed '/^Requires.private/d' "$(pkg-config --variable=pcfiledir libzmq)/libzmq.pc" > "$dir/libzmq.pc.new"
    if ! cmp -s "$dir/libzmq.pc.new" "$dir/libzmq.pc" 2>/dev/null; then mv "$dir/libzmq.pc.new" "$dir/libzmq.pc"; else rm "$dir/libzmq.pc.new"; fi
    export PKG_CONFIG_PATH="$dir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
}

courier_install_system_packages
courier_pkgconfig_path
