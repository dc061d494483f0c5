# shellcheck shell=bash
# Shared helpers for scripts/*.sh. Source it; it defines functions and variables only (no side effects
# besides making sure the sbin directories are on PATH).
#
#   BERTH_REPO            the repository root (this file's parent's parent)
#   BERTH_TOOLS_NODE      where scripts/setup.sh installs Node 24 when the machine's node is older
#   berth_use_node        put the project's Node first on PATH (no-op when the machine's node is used)
#   berth_node_major BIN  print the major version of a node binary (empty if it does not run)

BERTH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BERTH_TOOLS_NODE=$BERTH_REPO/.tools/node
BERTH_TOOLS_BIN=$BERTH_TOOLS_NODE/node_modules/.bin
# shellcheck disable=SC2034  # used by setup.sh
BERTH_NODE_MAJOR=24                          # what setup.sh provides and the tests run on
BERTH_E2E_DIR=${BERTH_E2E_DIR:-/var/lib/berth-e2e}
BERTH_TEST_IMAGE=${BERTH_TEST_IMAGE:-berth-test/busybox:latest}

# CI runners and `sudo` sometimes hand root a PATH without the sbin directories (iptables, dockerd).
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin ;; esac
export PATH

berth_log() { printf '[berth %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
berth_die() { berth_log "ERROR: $*"; exit 1; }

berth_node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || true; }

# The project's own Node (installed by setup.sh) wins over the machine's: setup only installs it when
# the machine's node is too old, so preferring it keeps every script on the same runtime.
berth_use_node() {
  if [ -x "$BERTH_TOOLS_BIN/node" ]; then
    case ":$PATH:" in *":$BERTH_TOOLS_BIN:"*) ;; *) PATH=$BERTH_TOOLS_BIN:$PATH ;; esac
    export PATH
  fi
}

# The node name berth registers by default (kubelet: lowercased os.Hostname()).
berth_node_name() { hostname | tr '[:upper:]' '[:lower:]'; }
