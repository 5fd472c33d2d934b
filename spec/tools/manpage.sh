#!/usr/bin/env bash
# docs/ecaphost.1 names every command and every option the --help texts list, and groff
# reads it without a warning:   manpage.sh ECAPHOST SRC_DIR
exe=$1 page=$2/docs/ecaphost.1
text=$(sed 's/\\-/-/g' "$page") || exit 1
status=0
words=$(for c in "" run repl ping schedule sim routes journal; do "$exe" $c --help; done 2>/dev/null |
    grep -oE '(^|[ [])--?[a-z][a-z-]*|ecaphost [a-z]+ ' | sed 's/^[ []//' | sort -u)
[ -n "$words" ] || { echo "FAIL: no options read from $exe --help"; exit 1; }
while read -r w; do
    grep -qE -- "(^|[^a-z-])${w}([^a-z-]|$)" <<<"$text" || { echo "FAIL: $page lacks $w"; status=1; }
done <<<"$words"
warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
[ -z "$warnings" ] || { echo "FAIL: groff: $warnings"; status=1; }
[ $status -eq 0 ] && echo "ok: $(wc -l <<<"$words") commands and options, no groff warning"
exit $status
