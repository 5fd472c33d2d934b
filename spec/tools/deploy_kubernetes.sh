#!/usr/bin/env bash
# The CronJob manifest passes check_cronjob.lua, and each broken copy of it fails:
#   deploy_kubernetes.sh LUA SRC_DIR
set -u
lua=$1 src=$2
yaml=$src/scripts/deploy/kubernetes/cronjob.yaml
checker=$src/spec/tools/check_cronjob.lua
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
status=0

"$lua" "$checker" "$yaml" || { echo "FAIL: the shipped manifest does not pass"; status=1; }

# name | sed expression that breaks one rule
while IFS='|' read -r name expr; do
  sed "$expr" "$yaml" > "$tmp/broken.yaml"
  if cmp -s "$yaml" "$tmp/broken.yaml"; then
    echo "FAIL: mutation '$name' changed nothing (the test is stale)"; status=1; continue
  fi
  if "$lua" "$checker" "$tmp/broken.yaml" 2>"$tmp/err"; then
    echo "FAIL: mutation '$name' passed the check"; status=1
  else
    echo "ok: '$name' refused: $(head -1 "$tmp/err")"
  fi
done <<'MUTATIONS'
kind Job|s/^kind: CronJob/kind: Job/
concurrency Allow|s/concurrencyPolicy: Forbid/concurrencyPolicy: Allow/
defaultMode decimal 400|s/defaultMode: 0400/defaultMode: 400/
defaultMode 0440|s/defaultMode: 0400/defaultMode: 0440/
defaultMode removed|/defaultMode:/d
restartPolicy OnFailure|s/restartPolicy: Never/restartPolicy: OnFailure/
runAsUser removed|/runAsUser:/d
runAsUser root|s/runAsUser: 10001/runAsUser: 0/
fsGroup removed|/fsGroup:/d
key outside the mount|s#- /run/ecaphost/api-key#- /tmp/api-key#
key copied group-readable|s/"-m", "0400"/"-m", "0440"/
exit 3 retried|s/values: \[1, 2, 3, 4, 5, 6\]/values: [1, 2, 4, 5, 6]/
no podFailurePolicy action|s/action: FailJob/action: Count/
script not from the ConfigMap|s#configMap:#emptyDir:#
unsupported YAML|s/schedule: "0 2 \* \* \*"/schedule: |/
MUTATIONS
exit $status
