#!/usr/bin/env bash
# bench/bundle.sh times writing a 20-image bundle (shared base layers, workload "bundle" of
# bench/gen) from a local registry to disk, in the same run for every tool, and reports time and
# bytes on disk (see bench/README.md, "Bundles"):
#   imgcopy  `imgcopy sync --config` of the 20 images into one oci-archive
#   skopeo   `skopeo copy` of each image into an oci-archive of its own (20 files)
#   crane    `crane pull` of the 20 references into one tarball
#
# Environment: BENCH_N (runs per tool, default 3; 1 with BENCH_QUICK=1), BENCH_QUICK=1 (small
# layers), BENCH_TOOLS ("imgcopy skopeo crane"), BENCH_WORK, BENCH_KEEP=1, BENCH_OUT=FILE,
# BENCH_SKIP_INSTALL=1, as for bench/run.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bench_init bundle "imgcopy skopeo crane" src out reg
require_peers docker-registry skopeo crane /usr/bin/time
(cd "$root" && go build -o "$bin/" ./bench/gen ./bench/floor ./cmd/imgcopy)

cleanup() {
	stop_registry A
	if [ "${BENCH_KEEP:-0}" != 1 ] && [ -z "${BENCH_WORK:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
start_registry A
A=127.0.0.1:${reg_port[A]}

# --- workload: 20 images in the registry, and the bytes of their distinct blobs -----------------
# shellcheck disable=SC2046
read -r _ _ unique _ < <("$bin/gen" $([ "$quick" = 1 ] && echo -quick) -out "$work/src" bundle)
refs=()
printf '%s:\n  tls-verify: false\n  images:\n' "$A" >"$work/bundle.yaml"
for i in $(seq -w 0 19); do
	"$bin/imgcopy" copy -q --dest-tls-verify=false "oci:$work/src/bundle:app-$i" "docker://$A/bundle/app-$i:bench"
	refs+=("$A/bundle/app-$i:bench")
	printf '    bundle/app-%s: [bench]\n' "$i" >>"$work/bundle.yaml"
done
log "registry $A holds 20 images; distinct blobs: $unique bytes"

# run TOOL OUT: the timed command of TOOL, writing to OUT (a fresh HOME, so that no tool
# starts with a cache).
run() {
	local tool=$1 out=$2 r
	rm -rf "$work/home" && mkdir -p "$work/home"
	case $tool in
	imgcopy) HOME=$work/home XDG_CACHE_HOME=$work/home/cache "$bin/imgcopy" sync -q --config "$work/bundle.yaml" "oci-archive:$out" ;;
	skopeo)
		mkdir -p "$out"
		for r in "${refs[@]}"; do
			HOME=$work/home skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$r" "oci-archive:$out/$(basename "${r%%:bench}").tar:bench"
		done
		;;
	crane) HOME=$work/home crane pull --insecure "${refs[@]}" "$out" ;;
	esac
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
results=$work/results.tsv
echo -e "# tool\trun\tseconds\tpeak_rss_kib\tbytes\tstatus" >"$results"
for ((i = 1; i <= runs; i++)); do
	for tool in $tools; do
		out=$work/out/$tool
		rm -rf "$out"
		status=0
		/usr/bin/time -f '%e %M' -o "$work/time.out" bash -c "$(declare -p bin refs work); $(declare -f run); run $tool $out" \
			>>"$work/runs.log" 2>&1 || status=$?
		read -r secs rss < <(tail -n 1 "$work/time.out")
		bytes=$(du -sb "$out" | cut -f1)
		if [ "$tool" = imgcopy ] && [ "$status" = 0 ] && ! "$bin/imgcopy" verify "oci-archive:$out" >>"$work/runs.log" 2>&1; then
			status=99 # not a complete, intact bundle
		fi
		echo -e "$tool\t$i\t$secs\t$rss\t$bytes\t$status" >>"$results"
		log "run $i/$runs: $tool ${secs}s $((rss / 1024))MiB $bytes bytes status $status"
	done
done

# --- report: medians, bytes against the distinct blobs, the targets --------------------------------
report=$work/results.md
{
	echo "## bench/bundle.sh $([ "$quick" = 1 ] && echo "quick (BENCH_QUICK=1)" || echo full) — $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Machine: $(nproc) CPUs, $(uname -sr). Runs per tool: $runs (median time, highest RSS)."
	echo "Load average (1, 5, 15 min) at the start of the timed runs: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
	echo "Tools: imgcopy $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo '?'), skopeo $(skopeo --version | awk '{print $3}'), crane $(crane version)."
	echo "Workload: 20 images, distinct blobs $unique bytes ($(awk -v u="$unique" 'BEGIN {printf "%.1f MiB", u / 1048576}'))."
	echo
	echo "| tool | writes | time s | peak RSS MiB | bytes on disk | bytes / distinct blobs | failed runs |"
	echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
	declare -A med bytes
	for tool in $tools; do
		case $tool in
		imgcopy) what="one oci-archive (imgcopy sync)" ;;
		skopeo) what="20 oci-archives" ;;
		crane) what="one tarball (crane pull)" ;;
		esac
		mapfile -t times < <(awk -F'\t' -v t="$tool" '$1 == t && $6 == 0 { print $3 }' "$results" | sort -g)
		n=${#times[@]}
		failed=$(awk -F'\t' -v t="$tool" '$1 == t && $6 != 0' "$results" | wc -l)
		if ((n == 0)); then
			echo "| $tool | $what | - | - | - | - | $failed |"
			continue
		fi
		if ((n % 2)); then med[$tool]=${times[n / 2]}; else med[$tool]=$(awk -v a="${times[n / 2 - 1]}" -v b="${times[n / 2]}" 'BEGIN {print (a + b) / 2}'); fi
		rss=$(awk -F'\t' -v t="$tool" '$1 == t && $6 == 0 && $4 > m { m = $4 } END { printf "%.0f", m / 1024 }' "$results")
		bytes[$tool]=$(awk -F'\t' -v t="$tool" '$1 == t && $6 == 0 { b = $5 } END { print b }' "$results")
		echo "| $tool | $what | ${med[$tool]} | $rss | ${bytes[$tool]} | $(awk -v b="${bytes[$tool]}" -v u="$unique" 'BEGIN {printf "%.4f", b / u}') | $failed |"
	done
	echo
	if [ -z "${med[imgcopy]:-}" ]; then
		echo "Targets: no successful imgcopy run."
	else
		awk -v b="${bytes[imgcopy]}" -v u="$unique" 'BEGIN {printf "Targets: bytes ≤ distinct blobs + 1 %%: %s (%.2f %% over); ", b <= u * 1.01 ? "met" : "MISSED", (b / u - 1) * 100}'
		if [ -n "${med[crane]:-}" ]; then
			awk -v i="${med[imgcopy]}" -v c="${med[crane]}" 'BEGIN {printf "time ≤ crane: %s (imgcopy %.2f s, crane %.2f s).\n", i <= c ? "met" : "MISSED", i, c}'
		else
			echo "time ≤ crane: crane not run."
		fi
	fi
} >"$report"
cat "$report"
if [ -n "${BENCH_OUT:-}" ]; then cp "$report" "$BENCH_OUT"; cp "$results" "${BENCH_OUT%.md}.tsv"; fi
