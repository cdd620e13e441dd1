#!/usr/bin/env bash
# cover.sh CMD...: runs a go test command that has -cover, passing its
# output on as it comes, and fails when it fails or when a package of
# COVER_MIN ("dir:percent ...", dir below the module) reported less
# statement coverage than its minimum, or none.
set -uo pipefail
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$@" 2>&1 | tee "$out"
rc=$?
mod=$(${GO:-go} list -m)
for want in ${COVER_MIN:-}; do
	dir=${want%%:*} min=${want#*:}
	got=$(awk -v pkg="$mod/$dir" '$1 == "ok" && $2 == pkg {
		for (i = 3; i < NF; i++) if ($i == "coverage:") { sub("%", "", $(i + 1)); print $(i + 1) }
	}' "$out")
	if [ -z "$got" ]; then
		echo "coverage: $dir reported none (minimum $min%)"
		rc=1
	elif awk -v got="$got" -v min="$min" 'BEGIN { exit !(got + 0 < min + 0) }'; then
		echo "coverage: $dir $got% is below its minimum $min%"
		rc=1
	else
		echo "coverage: $dir $got% (minimum $min%)"
	fi
done
exit $rc
