#!/usr/bin/env bash
# The bash completion offers the commands and each command's options:
#   completion.sh ECAPHOST SRC_DIR
exe=$1 src=$2
PATH=$(dirname "$exe"):$PATH
source "$src/scripts/completion/ecaphost.bash" || exit 1
status=0
# expect WORD COMP_WORDS...: the completion of the last word offers WORD
expect() {
    local want=$1; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=()
    _ecaphost
    if [[ " ${COMPREPLY[*]} " == *" $want "* ]]; then
        echo "ok: '$*' offers $want"
    else
        echo "FAIL: '$*' offers '${COMPREPLY[*]}', not $want"; status=1
    fi
}
expect run ecaphost ""
expect run ecaphost r
expect schedule ecaphost sch
expect --dry-run ecaphost run --dr
expect --api-key-file ecaphost run --api-key
expect us-east ecaphost run --environment us
expect --once ecaphost schedule --on
expect --base-url ecaphost schedule --base
expect json ecaphost schedule --log-format j
expect --port ecaphost sim --po
expect --json ecaphost journal --js
expect --dry-run "$exe" run --timeout 1h --dr
exit $status
