#!/usr/bin/env bash
# bench/resume.sh measures resuming (issue 17) on a 1 GiB single-layer image (workload "huge"
# of bench/gen) in a local registry, pulled into an OCI layout (see bench/README.md,
# "Resuming"):
#
#   cost  the same pull, not interrupted, by imgcopy (which keeps a partial download as it
#         goes), imgcopy --no-resume and crane: what keeping the download costs.
#   cut   the pull through `floor proxy`, which cuts the link for good once 70 % of the image
#         went by; then the same command again through a proxy that lets everything pass.
#         The bytes both proxies passed, over the image's size: imgcopy continues where it
#         stopped, skopeo and crane start over.
#
# Environment: BENCH_N (runs per tool for "cost", default 3; 1 with BENCH_QUICK=1),
# BENCH_QUICK=1 (a 16 MiB layer), BENCH_TOOLS ("imgcopy skopeo crane"), BENCH_BEFORE=PATH (an
# older imgcopy binary to time in "cost" too), BENCH_WORK, BENCH_KEEP=1, BENCH_OUT=FILE,
# BENCH_SKIP_INSTALL=1, as for bench/run.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bench_init resume "imgcopy skopeo crane" src out reg home
require_peers docker-registry skopeo crane /usr/bin/time
(cd "$root" && go build -o "$bin/" ./bench/gen ./bench/floor ./cmd/imgcopy)

proxy_pid=""
stop_proxy() {
	if [ -n "$proxy_pid" ]; then
		kill "$proxy_pid" 2>/dev/null || true
		wait "$proxy_pid" 2>/dev/null || true
		proxy_pid=""
	fi
}
cleanup() {
	stop_proxy
	stop_registry A
	if [ "${BENCH_KEEP:-0}" != 1 ] && [ -z "${BENCH_WORK:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
start_registry A
A=127.0.0.1:${reg_port[A]}
P=127.0.0.1:$("$bin/floor" freeport)

# start_proxy CUT: a proxy on $P to A, counting into $work/count, cutting after CUT bytes (0: never).
start_proxy() {
	rm -f "$work/count"
	"$bin/floor" proxy -cut "$1" -count "$work/count" "$P" "$A" >>"$work/proxy.log" 2>&1 &
	proxy_pid=$!
	"$bin/floor" wait "$P" 20
}
counted() { if [ -f "$work/count" ]; then cat "$work/count"; else echo 0; fi; }

# --- workload ------------------------------------------------------------------------------------
# shellcheck disable=SC2046
read -r _ _ size _ < <("$bin/gen" $([ "$quick" = 1 ] && echo -quick) -out "$work/src" huge)
crane push --insecure "$work/src/huge" "$A/huge:bench" >/dev/null 2>>"$work/setup.log"
cut=$((size * 7 / 10))
log "registry $A holds huge:bench, $size bytes; the proxy cuts after $cut"

# pull TOOL HOST OUT: the pull of huge:bench from HOST into the layout OUT, as TOOL does it.
pull() {
	local tool=$1 host=$2 out=$3
	case $tool in
	imgcopy) HOME=$work/home XDG_CACHE_HOME=$work/home/cache "$bin/imgcopy" copy -q --src-tls-verify=false "docker://$host/huge:bench" "oci:$out:bench" ;;
	imgcopy-no-resume) HOME=$work/home XDG_CACHE_HOME=$work/home/cache "$bin/imgcopy" copy -q --no-resume --src-tls-verify=false "docker://$host/huge:bench" "oci:$out:bench" ;;
	imgcopy-before) HOME=$work/home XDG_CACHE_HOME=$work/home/cache "$BENCH_BEFORE" copy -q --src-tls-verify=false "docker://$host/huge:bench" "oci:$out:bench" ;;
	skopeo) skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$host/huge:bench" "oci:$out:bench" ;;
	crane) crane pull --insecure --format oci "$host/huge:bench" "$out" ;;
	esac
}

# timed TOOL HOST OUT: runs pull under /usr/bin/time and prints "seconds rss status".
timed() {
	local status=0
	echo "\$ pull $*" >>"$work/runs.log"
	/usr/bin/time -f '%e %M' -o "$work/time.out" bash -c "$(declare -p work bin BENCH_BEFORE 2>/dev/null); $(declare -f pull); pull $*" \
		>>"$work/runs.log" 2>&1 || status=$?
	read -r secs rss < <(tail -n 1 "$work/time.out")
	echo "$secs $rss $status"
}

results=$work/results.tsv
echo -e "# part\ttool\trun\tseconds\tpeak_rss_kib\tstatus\tbytes" >"$results"

# --- cost: uninterrupted pulls ---------------------------------------------------------------------
cost_tools="imgcopy imgcopy-no-resume crane"
if [ -n "${BENCH_BEFORE:-}" ]; then cost_tools="imgcopy-before $cost_tools"; fi
for ((i = 1; i <= runs; i++)); do
	for tool in $cost_tools; do
		out=$work/out/$tool
		rm -rf "$out" "$work/home/cache/imgcopy/resume"
		read -r secs rss status < <(timed "$tool" "$A" "$out")
		echo -e "cost\t$tool\t$i\t$secs\t$rss\t$status\t$size" >>"$results"
		log "cost run $i/$runs: $tool ${secs}s $((rss / 1024))MiB status $status"
	done
done

# --- cut: a pull cut for good at 70 %, then the same pull again ---------------------------------------
for tool in $tools; do
	out=$work/out/$tool
	rm -rf "$out" "$work/home/cache/imgcopy/resume"
	start_proxy "$cut"
	read -r secs rss status < <(timed "$tool" "$P" "$out")
	stop_proxy
	echo -e "cut-1\t$tool\t1\t$secs\t$rss\t$status\t$(counted)" >>"$results"
	log "cut run 1: $tool ${secs}s status $status, $(counted) bytes"
	start_proxy 0
	read -r secs rss status < <(timed "$tool" "$P" "$out")
	stop_proxy
	name=oci:$out:bench
	if [ "$tool" = crane ]; then name=oci:$out; fi # crane names no image in the layout
	if [ "$status" = 0 ] && ! "$bin/imgcopy" verify "$name" >>"$work/runs.log" 2>&1; then
		status=99 # the layout is not complete and intact
	fi
	echo -e "cut-2\t$tool\t1\t$secs\t$rss\t$status\t$(counted)" >>"$results"
	log "cut run 2: $tool ${secs}s status $status, $(counted) bytes"
done

# --- report ----------------------------------------------------------------------------------------
report=$work/results.md
{
	echo "## bench/resume.sh $([ "$quick" = 1 ] && echo "quick (BENCH_QUICK=1)" || echo full) — $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Machine: $(nproc) CPUs, $(uname -sr). Image: one layer, $size bytes of blobs in all."
	echo "Tools: imgcopy $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo '?'), skopeo $(skopeo --version | awk '{print $3}'), crane $(crane version)."
	echo
	echo "**Cost** of keeping the partial download: registry → OCI layout, not interrupted, $runs run(s) each (median time, highest RSS)."
	echo
	echo "| tool | time s | peak RSS MiB | time / crane | failed runs |"
	echo "| --- | ---: | ---: | ---: | ---: |"
	crane_med=$(awk -F'\t' '$1 == "cost" && $2 == "crane" && $6 == 0 { print $4 }' "$results" | sort -g | awk '{ a[NR] = $1 } END { if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }')
	for tool in $cost_tools; do
		med=$(awk -F'\t' -v t="$tool" '$1 == "cost" && $2 == t && $6 == 0 { print $4 }' "$results" | sort -g | awk '{ a[NR] = $1 } END { if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }')
		rss=$(awk -F'\t' -v t="$tool" '$1 == "cost" && $2 == t && $5 > m { m = $5 } END { printf "%.0f", m / 1024 }' "$results")
		failed=$(awk -F'\t' -v t="$tool" '$1 == "cost" && $2 == t && $6 != 0' "$results" | wc -l)
		ratio=$(awk -v a="${med:-0}" -v c="${crane_med:-0}" 'BEGIN { if (a > 0 && c > 0) printf "%.2f", a / c; else print "-" }')
		echo "| $tool | ${med:--} | $rss | $ratio | $failed |"
	done
	echo
	echo "**Cut at 70 %**: the pull through a proxy that breaks the link for good after $cut bytes, then the same command again. Bytes are what the proxies passed (all responses)."
	echo
	echo "| tool | run 1 s (exit) | run 2 s (exit) | bytes run 1 | bytes run 2 | total / image | target ≤ 1.05 |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | --- |"
	for tool in $tools; do
		awk -F'\t' -v t="$tool" -v size="$size" '
			$1 == "cut-1" && $2 == t { s1 = $4; x1 = $6; b1 = $7 }
			$1 == "cut-2" && $2 == t { s2 = $4; x2 = $6; b2 = $7 }
			END {
				r = (b1 + b2) / size
				printf "| %s | %s (%s) | %s (%s) | %d | %d | %.3f | %s |\n", t, s1, x1, s2, x2, b1, b2, r,
					(t == "imgcopy" ? (r <= 1.05 && x2 == 0 ? "met" : "MISSED") : "-")
			}' "$results"
	done
	echo
	echo "Exit 99 = the second run exited 0 but \`imgcopy verify\` found the layout incomplete or damaged."
} >"$report"
cat "$report"
if [ -n "${BENCH_OUT:-}" ]; then cp "$report" "$BENCH_OUT"; cp "$results" "${BENCH_OUT%.md}.tsv"; fi
