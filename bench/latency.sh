#!/usr/bin/env bash
# bench/latency.sh measures copies to and from registries a round trip away: registries A and B
# each behind `floor proxy -delay`, which holds every request for BENCH_RTT (default 20ms)
# before it forwards it, as a link with that round-trip time would (its bandwidth is not
# limited). There a copy's time is mostly its round trips, where in bench/run.sh, on loopback,
# it is mostly CPU. Scenarios:
#
#   reg-reg  A (through its proxy) → B (through its proxy)
#   reg-oci  A (through its proxy) → an OCI layout
#   oci-reg  an OCI layout → B (through its proxy)
#
# Environment: BENCH_RTT (a Go duration, 20ms), BENCH_WORKLOADS ("tree multi many", of
# bench/gen), BENCH_N (runs per cell, default 3; 1 with BENCH_QUICK=1, which also makes the
# workloads small), BENCH_TOOLS ("imgcopy skopeo crane"), BENCH_WORK, BENCH_KEEP=1,
# BENCH_OUT=FILE, BENCH_SKIP_INSTALL=1, as for bench/run.sh.
set -euo pipefail
export LC_NUMERIC=C # EPOCHREALTIME with a decimal point

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bench_init latency "imgcopy skopeo crane" src out reg home
require_peers docker-registry skopeo crane /usr/bin/time
(cd "$root" && go build -o "$bin/" ./bench/gen ./bench/floor ./cmd/imgcopy)
rtt=${BENCH_RTT:-20ms}
workloads=${BENCH_WORKLOADS:-tree multi many}
scenarios="reg-reg reg-oci oci-reg"

proxy_pids=()
cleanup() {
	local p
	for p in "${proxy_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	bench_cleanup
}
bench_registries
trap cleanup EXIT
PA=127.0.0.1:$("$bin/floor" freeport)
"$bin/floor" proxy -delay "$rtt" "$PA" "$A" >>"$work/proxy.log" 2>&1 &
proxy_pids+=($!)
PB=127.0.0.1:$("$bin/floor" freeport)
"$bin/floor" proxy -delay "$rtt" "$PB" "$B" >>"$work/proxy.log" 2>&1 &
proxy_pids+=($!)
"$bin/floor" wait "$PA" 20
"$bin/floor" wait "$PB" 20
log "registries A=$A B=$B behind proxies $PA and $PB adding $rtt to every request"

# shellcheck disable=SC2086
"$bin/gen" $([ "$quick" = 1 ] && echo -quick) -out "$work/src" $workloads | tee "$work/workloads.tsv" >&2
for w in $workloads; do
	crane push --insecure "$work/src/$w" "$A/$w:bench" >/dev/null 2>>"$work/setup.log"
done

# run TOOL SCENARIO WORKLOAD: the timed command, with each tool's defaults; imgcopy gets a cache
# of its own, empty for each run (skopeo's blob-info cache, under its own directory, is kept).
run() {
	local tool=$1 s=$2 w=$3 all=() out=$work/out/$3-$1
	if [ "$w" = multi ]; then all=(--multi-arch all); fi
	local src dst
	case $s in
	reg-reg) src=docker://$PA/$w:bench dst=docker://$PB/$w:bench ;;
	reg-oci) src=docker://$PA/$w:bench dst=oci:$out:bench ;;
	oci-reg) src=oci:$work/src/$w:bench dst=docker://$PB/$w:bench ;;
	esac
	case $tool in
	imgcopy) HOME=$work/home XDG_CACHE_HOME=$work/home/cache "$bin/imgcopy" copy -q "${all[@]}" --src-tls-verify=false --dest-tls-verify=false "$src" "$dst" ;;
	skopeo) skopeo --insecure-policy copy -q "${all[@]}" --src-tls-verify=false --dest-tls-verify=false "$src" "$dst" ;;
	crane)
		case $s in
		reg-reg) crane copy --insecure "$PA/$w:bench" "$PB/$w:bench" ;;
		reg-oci) crane pull --insecure --format oci "$PA/$w:bench" "$out" ;;
		oci-reg) crane push --insecure "$work/src/$w" "$PB/$w:bench" ;;
		esac
		;;
	esac
}

results=$work/results.tsv
echo -e "# scenario\tworkload\ttool\trun\tseconds\tpeak_rss_kib\tstatus" >"$results"
for w in $workloads; do
	for s in $scenarios; do
		for ((i = 1; i <= runs; i++)); do
			for tool in $tools; do
				wipe_b
				rm -rf "$work/out/$w-$tool" "$work/home"
				mkdir -p "$work/home"
				status=0
				start=$EPOCHREALTIME
				/usr/bin/time -f '%M' -o "$work/time.out" bash -c "$(declare -p bin work PA PB); $(declare -f run); run $tool $s $w" \
					>>"$work/runs.log" 2>&1 || status=$?
				secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
				read -r rss < <(tail -n 1 "$work/time.out")
				echo -e "$s\t$w\t$tool\t$i\t$secs\t$rss\t$status" >>"$results"
				log "$s $w run $i/$runs: $tool ${secs}s status $status"
			done
		done
	done
done

# --- report: medians and imgcopy's ratios -------------------------------------------------------
median() { # SCENARIO WORKLOAD TOOL
	awk -F'\t' -v s="$1" -v w="$2" -v t="$3" '$1 == s && $2 == w && $3 == t && $7 == 0 { print $5 }' "$results" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "—"; else printf "%.2f", a / b }'; }
report=$work/results.md
{
	echo "## bench/latency.sh $([ "$quick" = 1 ] && echo "quick (BENCH_QUICK=1)" || echo full) — $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Machine: $(nproc) CPUs, $(uname -sr). Every request held $rtt by the proxies. Runs per cell: $runs (median seconds)."
	echo "Tools: imgcopy $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo '?'), skopeo $(skopeo --version | awk '{print $3}'), crane $(crane version), docker-registry $(docker-registry --version | awk '{print $3}')."
	echo
	echo "| scenario | workload | imgcopy | skopeo | crane | imgcopy/skopeo | imgcopy/crane | failed runs |"
	echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
	for s in $scenarios; do
		for w in $workloads; do
			i=$(median "$s" "$w" imgcopy) sk=$(median "$s" "$w" skopeo) cr=$(median "$s" "$w" crane)
			failed=$(awk -F'\t' -v s="$s" -v w="$w" '$1 == s && $2 == w && $7 != 0' "$results" | wc -l)
			echo "| $s | $w | $i | $sk | $cr | $(ratio "$i" "$sk") | $(ratio "$i" "$cr") | $failed |"
		done
	done
} >"$report"
cat "$report"
if [ -n "${BENCH_OUT:-}" ]; then cp "$report" "$BENCH_OUT"; cp "$results" "${BENCH_OUT%.md}.tsv"; fi
