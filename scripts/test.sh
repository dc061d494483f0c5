#!/usr/bin/env bash
# The project's test command (also what CI runs, via .ci/run): set up the machine, start the e2e
# cluster (etcd + kube-apiserver + controller-manager + scheduler, built from Debian's sources and
# cached under /var/lib/berth-e2e), type-check, then run every vitest suite (unit, integration, e2e).
# Exit status: non-zero if the type-check or any test failed, or any test was skipped (BERTH_REQUIRE_ALL). The output ends with vitest's summary and a
# plain "N passed, N failed" line (counted from vitest's JSON report).
#
# Environment for the tests:
#   BERTH_E2E_DIR        /var/lib/berth-e2e: <node>.kubeconfig, admin.kubeconfig, bin/kubectl, pki/, run/*.log
#   BERTH_E2E_APISERVER  https://127.0.0.1:6443
#   BERTH_E2E_NODE_NAME  this host's node name (lowercased hostname); node-1 and node-2 identities exist too
#   BERTH_TEST_IMAGE     berth-test/busybox:latest (local image, built by scripts/setup.sh)
# Arguments are passed to vitest, e.g. `scripts/test.sh test/unit`.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then exec sudo -n --preserve-env=CI,BERTH_REQUIRE_ALL bash "$0" "$@"; fi
  echo "scripts/test.sh: the tests drive dockerd, iptables and network namespaces: run as root" >&2
  exit 1
fi
# shellcheck source=scripts/setup.sh
source scripts/setup.sh

export BERTH_E2E_DIR=${BERTH_E2E_DIR:-/var/lib/berth-e2e}
# Every suite must run: skip-guards (test/helpers/require.ts) throw instead of skipping, and a skipped test fails
# the run (scripts/vitest-summary.mjs). BERTH_REQUIRE_ALL=0 scripts/test.sh ... allows skips (they are still listed).
export BERTH_REQUIRE_ALL=${BERTH_REQUIRE_ALL:-1}
# test/e2e/berth-sa-token.test.ts needs the rig's bound-token profile (RIG_PROFILE in test/e2e/apiserver.sh: every pod
# gets a kube-api-access volume): it restarts kube-apiserver into that profile for its own run and back afterwards
# (vitest runs the files one by one). `RIG_PROFILE=bound-token scripts/test.sh` runs every suite in that profile.
export BERTH_E2E_SWITCH_PROFILE=${BERTH_E2E_SWITCH_PROFILE:-1}
BERTH_E2E_NODE_NAME=$(berth_node_name)
export BERTH_E2E_NODE_NAME BERTH_E2E_APISERVER=https://127.0.0.1:${RIG_PORT:-6443} BERTH_TEST_IMAGE
# identities: this host plus two more node names for tests that need another node's credentials
nodes="node-1 node-2"
case " $nodes " in *" $BERTH_E2E_NODE_NAME "*) ;; *) nodes="$nodes $BERTH_E2E_NODE_NAME" ;; esac
RIG_CONTROLLERS=1 RIG_SA_ADMISSION=0 RIG_NODES="$nodes" RIG_RESTART_ON_CHANGE=1 \
  bash test/e2e/apiserver.sh start

t=$SECONDS
tsc_rc=0
berth_log "test: tsc -p ."
# the local binaries directly (what `npx` would pick, without npm's start-up and config warnings)
node_modules/.bin/tsc -p . || tsc_rc=$?
if [ "$tsc_rc" != 0 ]; then
  berth_log "test: type-check FAILED (exit $tsc_rc, errors above); running the tests anyway, the exit status will be non-zero"
else
  berth_log "test: type-check ok in $((SECONDS - t))s"
fi

vitest_rc=0
report=$(mktemp /tmp/berth-vitest-XXXXXX.json)
node_modules/.bin/vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || vitest_rc=$?
# The summary line; under BERTH_REQUIRE_ALL=1 any skipped test is a failure (exit 3), named in the output.
summary_rc=0
if [ -s "$report" ]; then
  node scripts/vitest-summary.mjs "$report" || summary_rc=$?
else
  echo "scripts/test.sh: vitest wrote no JSON report" >&2
  summary_rc=1
fi
rm -f "$report"
[ "$vitest_rc" != 0 ] && exit "$vitest_rc"
[ "$summary_rc" != 0 ] && exit "$summary_rc"
exit "$tsc_rc"
