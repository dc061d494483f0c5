#!/usr/bin/env bash
# Run berth on this machine in standalone mode: no API server, the static pods in examples/manifests
# (Docker must be able to run them: scripts/setup.sh builds their image locally). Extra arguments are
# passed to `berth run`, e.g. `scripts/run.sh --kubeconfig /var/lib/berth-e2e/$(hostname).kubeconfig`.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/setup.sh
source "$repo/scripts/setup.sh"
exec "$repo/bin/berth" run --pod-manifest-path "$repo/examples/manifests" --log-format text "$@"
