#!/usr/bin/env bash
# The layers of host/ point down only: lib < net < bindings < run < repl, sched < cli; sim beside them on lib.
# A quoted include that names a higher layer fails this check, and so does config.h anywhere
# but cli/. Usage: spec/tools/layers.sh [SOURCE_DIR]
set -u
cd "${1:-.}" || exit 2
bad=0
check() { # folder, then the layers it may include
  local dir=$1; shift
  local allowed="$*"
  while IFS=: read -r file _ inc; do
    layer=${inc%%/*}
    case "$inc" in */*) ;; *) continue ;; esac # same folder
    if [[ " $allowed " != *" $layer "* ]]; then
      echo "layers: $file includes \"$inc\" ($dir/ may include: $allowed)"
      bad=1
    fi
  done < <(grep -Hn '^#include "' "$dir"/*.[ch] | sed -E 's/^([^:]+):([0-9]+):#include "([^"]+)".*/\1:\2:\3/')
}
check host/lib lib
check host/net lib net
check bindings lib net bindings
check host/run lib net bindings run
check host/sim lib sim
check host/sched lib run sched
check host/repl lib net bindings run repl
check host/cli lib net bindings run repl sim sched cli
if grep -ln '#include "cli/config.h"\|#include "config.h"' host/lib/* host/net/* host/run/* host/sim/* host/sched/* host/repl/* bindings/* 2>/dev/null; then
  echo "layers: only host/cli/ may include config.h"
  bad=1
fi
[ $bad = 0 ] && echo "layers: every include points down"
exit $bad
