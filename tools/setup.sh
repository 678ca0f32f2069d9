# Shared set-up for tools/demo, tools/test and the other tools: sourced, not run.
# Installs the system packages Courier needs when they are missing (libzmq's header and
# library; on Linux, Package.swift finds them in the default paths, without pkg-config; and
# patch, for tools/stage-trace).
set -euo pipefail

COURIER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$COURIER_ROOT"

courier_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

courier_install_system_packages() {
    local missing=()
    { [ -f /usr/include/zmq.h ] && { compgen -G "/usr/lib/*/libzmq.so" >/dev/null || [ -e /usr/lib/libzmq.so ]; }; } || missing+=(libzmq3-dev)
    # tools/test checks that tools/stage-trace.patch still applies (tools/stage-trace uses it).
    command -v patch >/dev/null 2>&1 || missing+=(patch)
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

courier_install_system_packages
