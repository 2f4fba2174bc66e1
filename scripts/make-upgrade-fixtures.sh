#!/bin/sh
# Rebuilds migrations/testdata/upgrade: for the last commit at each earlier
# schema version, build that commit's latch binary in a throwaway worktree,
# then let the fixtures-tagged test run it against a fresh SQLite file and a
# fresh PostgreSQL database, drive it over HTTP, and save the results.
# Usage: scripts/make-upgrade-fixtures.sh   (from the repository root)
set -eu
root=$(pwd)
bins=""
for pair in 1:f23eec1 2:ad9d6d9 3:e3fafa3 4:55197da; do
	v=${pair%%:*}
	commit=${pair#*:}
	dir=/tmp/latch-fixture-v$v
	if [ ! -d "$dir" ]; then
		git worktree add --detach "$dir" "$commit"
	fi
	(cd "$dir" && go build -o "$dir/latch-bin" .)
	bins="$bins${bins:+,}$v=$dir/latch-bin@$commit"
done
LATCH_FIXTURE_BINS=$bins go test -tags fixtures -count=1 -run TestMakeUpgradeFixtures -v ./migrations/
for pair in 1 2 3 4; do
	git worktree remove --force /tmp/latch-fixture-v$pair
done
cd "$root"
