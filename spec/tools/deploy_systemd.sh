#!/usr/bin/env bash
# The systemd units of scripts/deploy/systemd pass `systemd-analyze verify` (run against copies
# naming the built binary, since verify checks that ExecStart= exists, and with the man page
# of docs/ on MANPATH for Documentation=), hold the settings the deployment relies on, and
# broken copies fail:   deploy_systemd.sh ECAPHOST SRC_DIR
set -u
exe=$1 src=$2
units=$src/scripts/deploy/systemd
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/man/man1" && cp "$src/docs/ecaphost.1" "$tmp/man/man1/" || exit 1
export MANPATH=$tmp/man
status=0

# verify DIR: 0 when systemd-analyze accepts every unit there and says nothing about them
verify() {
  local out rc
  out=$(cd "$1" && systemd-analyze verify ./*.service ./*.timer 2>&1); rc=$?
  if [ $rc -ne 0 ] || grep -q ecaphost <<<"$out"; then
    printf '%s\n' "$out" | grep ecaphost | head -3
    return 1
  fi
}

copy() { # copy DIR: the units with the built binary
  mkdir -p "$1"
  for f in "$units"/*; do sed "s#/usr/bin/ecaphost#$exe#g" "$f" > "$1/${f##*/}"; done
}

copy "$tmp/good"
verify "$tmp/good" || { echo "FAIL: systemd-analyze verify refuses the shipped units"; status=1; }

# Settings the README and the scheduler rely on.
while IFS='|' read -r file regex why; do
  grep -Eq "$regex" "$units/$file" || { echo "FAIL: $file: no line matching '$regex' ($why)"; status=1; }
done <<'NEEDED'
ecaphost-schedule.service|^ExecStart=/usr/bin/ecaphost schedule .*--api-key-file %d/ecap-api-key |key from the credential
ecaphost-schedule.service|^LoadCredential=ecap-api-key:|the credential
ecaphost-schedule.service|^StateDirectory=ecaphost$|the scheduler state in /var/lib/ecaphost
ecaphost-schedule.service|^ExecReload=/bin/kill -HUP \$MAINPID$|reload = SIGHUP
ecaphost-schedule.service|^KillMode=mixed$|SIGTERM to the scheduler only, so runs get their grace
ecaphost-schedule.service|^NoNewPrivileges=yes$|hardening
ecaphost-schedule.service|^ProtectSystem=strict$|hardening
ecaphost-job.service|^Type=oneshot$|one run per start
ecaphost-job.service|^ExecStart=/usr/bin/ecaphost run .*--api-key-file %d/ecap-api-key |key from the credential
ecaphost-job.service|^LoadCredential=ecap-api-key:|the credential
ecaphost-job.timer|^Persistent=true$|a missed time runs at boot
ecaphost-job.timer|^OnCalendar=|the calendar
NEEDED

# Each mutation must make verify fail.
n=0
while IFS='|' read -r file expr; do
  n=$((n + 1)); copy "$tmp/m$n"
  sed -i "$expr" "$tmp/m$n/$file"
  if verify "$tmp/m$n" >/dev/null; then
    echo "FAIL: $file with '$expr' passed systemd-analyze verify"; status=1
  else
    echo "ok: $file with '$expr' refused"
  fi
done <<'MUTATIONS'
ecaphost-schedule.service|s/^ProtectSystem=strict/ProtectSytem=strict/
ecaphost-schedule.service|s#^ExecStart=[^ ]*#ExecStart=/nonexistent/ecaphost#
ecaphost-job.service|s/^Type=oneshot/Type=oneshoot/
ecaphost-job.timer|s/^OnCalendar=.*/OnCalendar=*-*-* 25:00:00/
ecaphost-job.service|s/^Documentation=man:ecaphost(1)/Documentation=man:ecaphost-nonexistent(1)/
MUTATIONS
exit $status
