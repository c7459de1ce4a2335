#!/usr/bin/env bash
# bench/sync.sh times mirroring 30 images (workload "sync" of bench/gen: 10 repositories × 3
# tags sharing a base layer) from one local registry to another, in the same run for every
# tool, cold (empty destination) and warm (the destination already holds everything; nothing
# changed), and reports time and peak RSS (see bench/README.md, "Sync"):
#   imgcopy  imgcopy sync --config sync.yaml (skopeo's YAML, all tags of the 10 repositories)
#   skopeo   skopeo sync --src yaml with the same file
#   regsync  regsync once, one "repository" step per repository, parallel 4 (imgcopy's default
#            --image-parallel; regsync's default is 1)
#
# Environment: BENCH_N (runs per tool and scenario, default 3; 1 with BENCH_QUICK=1),
# BENCH_QUICK=1 (small layers), BENCH_TOOLS ("imgcopy skopeo regsync"), BENCH_WORK,
# BENCH_KEEP=1, BENCH_OUT=FILE, BENCH_SKIP_INSTALL=1, as for bench/run.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bench_init sync "imgcopy skopeo regsync" src reg home
require_peers docker-registry skopeo regsync /usr/bin/time
(cd "$root" && go build -o "$bin/" ./bench/gen ./bench/floor ./cmd/imgcopy)

bench_registries # A, B; wipe_b empties B (lib.sh)

# --- workload: 30 images in registry A, and the tools' configuration files ----------------------
# shellcheck disable=SC2046
read -r _ _ unique _ < <("$bin/gen" $([ "$quick" = 1 ] && echo -quick) -out "$work/src" sync)
{
	echo "$A:"
	echo "  tls-verify: false"
	echo "  images:"
} >"$work/sync.yaml"
{
	echo "version: 1"
	echo "creds:"
	echo "  - {registry: \"$A\", tls: disabled}"
	echo "  - {registry: \"$B\", tls: disabled}"
	echo "defaults:"
	echo "  parallel: 4"
	echo "sync:"
} >"$work/regsync.yaml"
for r in $(seq -f %02g 0 9); do
	for t in 1 2 3; do
		"$bin/imgcopy" copy -q --dest-tls-verify=false "oci:$work/src/sync:app-$r-$t" "docker://$A/sync/app-$r:$t"
	done
	echo "    sync/app-$r: []" >>"$work/sync.yaml"
	echo "  - {source: \"$A/sync/app-$r\", target: \"$B/mirror/app-$r\", type: repository}" >>"$work/regsync.yaml"
done
log "registry $A holds 30 images in 10 repositories; distinct blobs: $unique bytes"

# run TOOL: the timed command of TOOL (a fresh HOME, so no tool starts with a cache).
run() {
	local tool=$1
	case $tool in
	imgcopy) HOME=$work/home/run XDG_CACHE_HOME=$work/home/run/cache "$bin/imgcopy" sync -q --dest-tls-verify=false --config "$work/sync.yaml" "docker://$B/mirror" ;;
	skopeo) HOME=$work/home/run skopeo --insecure-policy sync --src yaml --dest docker --dest-tls-verify=false "$work/sync.yaml" "$B/mirror" ;;
	regsync) HOME=$work/home/run regsync once -v warn -c "$work/regsync.yaml" ;;
	esac
}

# check: the destination holds the 30 images with their source digests (imgcopy's plan sees
# every one up to date).
check() {
	HOME=$work/home/check "$bin/imgcopy" sync --dry-run --output json --dest-tls-verify=false --config "$work/sync.yaml" "docker://$B/mirror" 2>>"$work/runs.log" |
		grep -q '"up-to-date": 30'
}

results=$work/results.tsv
echo -e "# scenario\ttool\trun\tseconds\tpeak_rss_kib\tstatus" >"$results"
for ((i = 1; i <= runs; i++)); do
	for scenario in cold warm; do
		for tool in $tools; do
			wipe_b
			rm -rf "$work/home/run"
			mkdir -p "$work/home/run"
			if [ "$scenario" = warm ] && ! run "$tool" >>"$work/runs.log" 2>&1; then
				log "$scenario run $i/$runs: $tool: set-up failed (see $work/runs.log)"
				echo -e "$scenario\t$tool\t$i\t-\t-\tsetup" >>"$results"
				continue
			fi
			rm -rf "$work/home/run" && mkdir -p "$work/home/run"
			status=0
			/usr/bin/time -f '%e %M' -o "$work/time.out" bash -c "$(declare -p bin work A B); $(declare -f run); run $tool" \
				>>"$work/runs.log" 2>&1 || status=$?
			read -r secs rss < <(tail -n 1 "$work/time.out")
			if [ "$status" = 0 ] && ! check; then status=99; fi
			echo -e "$scenario\t$tool\t$i\t$secs\t$rss\t$status" >>"$results"
			log "$scenario run $i/$runs: $tool ${secs}s $((rss / 1024))MiB status $status"
		done
	done
done

# --- report: medians, ratios, the targets ---------------------------------------------------------
median() { # SCENARIO TOOL
	awk -F'\t' -v s="$1" -v t="$2" '$1 == s && $2 == t && $6 == 0 { print $4 }' "$results" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
report=$work/results.md
{
	echo "## bench/sync.sh $([ "$quick" = 1 ] && echo "quick (BENCH_QUICK=1)" || echo full) — $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Machine: $(nproc) CPUs, $(uname -sr). Runs per cell: $runs (median time, highest RSS)."
	echo "Tools: imgcopy $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo '?'), skopeo $(skopeo --version | awk '{print $3}'), regsync $(regsync version 2>/dev/null | awk '/VCSTag/ {print $2}'), docker-registry $(docker-registry --version | awk '{print $3}')."
	echo "Workload: 30 images (10 repositories × 3 tags), distinct blobs $unique bytes ($(awk -v u="$unique" 'BEGIN {printf "%.1f MiB", u / 1048576}'))."
	echo
	echo "| scenario | tool | time s | peak RSS MiB | failed runs |"
	echo "| --- | --- | ---: | ---: | ---: |"
	declare -A med
	for scenario in cold warm; do
		for tool in $tools; do
			med[$scenario:$tool]=$(median "$scenario" "$tool")
			rss=$(awk -F'\t' -v s="$scenario" -v t="$tool" '$1 == s && $2 == t && $6 == 0 && $5 > m { m = $5 } END { printf "%.0f", m / 1024 }' "$results")
			failed=$(awk -F'\t' -v s="$scenario" -v t="$tool" '$1 == s && $2 == t && $6 != 0' "$results" | wc -l)
			echo "| $scenario | $tool | ${med[$scenario:$tool]} | $rss | $failed |"
		done
	done
	echo
	ic=${med[cold:imgcopy]:--} iw=${med[warm:imgcopy]:--}
	sc=${med[cold:skopeo]:--} rc=${med[cold:regsync]:--}
	rss=$(awk -F'\t' '$2 == "imgcopy" && $6 == 0 && $5 > m { m = $5 } END { printf "%.1f", m / 1024 }' "$results")
	awk -v ic="$ic" -v iw="$iw" -v sc="$sc" -v rc="$rc" -v rss="$rss" 'function t(ok) { return ok ? "met" : "MISSED" } BEGIN {
		if (ic == "-") { print "Targets: no successful imgcopy cold run."; exit }
		printf "Targets: cold ≤ 0.5 × skopeo sync: %s; ", sc == "-" ? "skopeo not run" : sprintf("%s (%.2f ×)", t(ic <= 0.5 * sc), ic / sc)
		printf "cold ≤ 1.0 × regsync: %s; ", rc == "-" ? "regsync not run" : sprintf("%s (%.2f ×)", t(ic <= rc), ic / rc)
		printf "warm ≤ 0.25 s: %s; ", iw == "-" ? "not run" : sprintf("%s (%.2f s)", t(iw <= 0.25), iw)
		printf "peak RSS ≤ 64 MiB: %s (%.1f MiB).\n", t(rss <= 64), rss
	}'
} >"$report"
cat "$report"
if [ -n "${BENCH_OUT:-}" ]; then cp "$report" "$BENCH_OUT"; cp "$results" "${BENCH_OUT%.md}.tsv"; fi
