#!/usr/bin/env bash
# bench/run.sh times imgcopy, skopeo, crane and a bare-HTTP floor on the same image copies,
# against two local registries (the Debian docker-registry, filesystem storage, 127.0.0.1), and
# prints markdown tables (median wall time, peak RSS, ratios). See bench/README.md.
#
# Environment:
#   BENCH_N=3                runs per tool and scenario (median reported); BENCH_QUICK=1 defaults it to 1
#   BENCH_QUICK=1            small workloads (a smoke check in a few minutes)
#   BENCH_WORKLOADS="big many tree multi"
#   BENCH_SCENARIOS="reg-reg reg-oci oci-reg reg-archive archive-reg warm"
#   BENCH_TOOLS="imgcopy imgcopy-nofsync imgcopy-noresume skopeo crane floor floor-sync floor-sendfile floor-nohash"
#                            (imgcopy-nofsync and floor-sync only where the copy writes to disk,
#                            imgcopy-noresume only where it downloads from a registry,
#                            floor-sendfile and floor-nohash only for oci-reg)
#   BENCH_JOBS=6             parallelism of the floor (imgcopy's default)
#   BENCH_WORK=DIR           scratch directory (default: a new one under ${TMPDIR:-/tmp}); needs
#                            about 6 × the workload size free (≈ 8 GiB for the full run)
#   BENCH_KEEP=1             keep the scratch directory
#   BENCH_OUT=FILE           also write the markdown report to FILE
#   BENCH_SKIP_INSTALL=1     do not run bench/install-peers.sh
set -euo pipefail
export LC_NUMERIC=C # EPOCHREALTIME with a decimal point

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
quick=${BENCH_QUICK:-0}
if [ "$quick" = 1 ]; then runs=${BENCH_N:-1}; else runs=${BENCH_N:-3}; fi
workloads=${BENCH_WORKLOADS:-big many tree multi}
scenarios=${BENCH_SCENARIOS:-reg-reg reg-oci oci-reg reg-archive archive-reg warm}
tools=${BENCH_TOOLS:-imgcopy imgcopy-nofsync imgcopy-noresume skopeo crane floor floor-sync floor-sendfile floor-nohash}
jobs=${BENCH_JOBS:-6}
work=${BENCH_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/imgcopy-bench.XXXXXX")}
mkdir -p "$work"/{bin,src,out,reg}
work=$(cd "$work" && pwd)
# imgcopy's blob-info cache and resume records start empty in every run of this script, as
# for a new user, and persist from copy to copy within it; the user's own cache (and what
# earlier experiments left there) plays no part.
export XDG_CACHE_HOME=$work/cache

log() { echo "bench: $*" >&2; }

# shellcheck source=bench/lib.sh
. "$here/lib.sh"
require_peers docker-registry skopeo crane /usr/bin/time

# --- build -------------------------------------------------------------------------------------
(cd "$root" && go build -o "$work/bin/" ./bench/gen ./bench/floor ./bench/report)
imgcopy_note=""
if [[ " $tools " == *" imgcopy "* ]]; then
	if ! (cd "$root" && go build -o "$work/bin/imgcopy" ./cmd/imgcopy) >"$work/imgcopy-build.log" 2>&1; then
		imgcopy_note="imgcopy did not build (see below); its rows are missing."
		log "$imgcopy_note"
		cat "$work/imgcopy-build.log" >&2
		tools=$(echo " $tools " | sed 's/ imgcopy / /')
	fi
fi
bin=$work/bin

# --- registries ----------------------------------------------------------------------------------
bench_registries # A, B; wipe_b empties B (lib.sh)
log "registries: A=$A B=$B, work dir $work"

# --- workloads ------------------------------------------------------------------------------------
log "generating workloads: $workloads"
# shellcheck disable=SC2086
"$bin/gen" $([ "$quick" = 1 ] && echo -quick) -out "$work/src" $workloads | tee "$work/workloads.tsv" >&2
for w in $workloads; do
	crane push --insecure "$work/src/$w" "$A/$w:bench" >/dev/null 2>>"$work/setup.log"
	if [ "$w" != multi ]; then
		skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$A/$w:bench" "docker-archive:$work/src/$w.tar:bench/$w:bench" 2>>"$work/setup.log"
	fi
done

# --- commands ------------------------------------------------------------------------------------
# cmd TOOL SCENARIO WORKLOAD: prints the command (one word per line) for a timed run.
cmd() {
	local tool=$1 s=$2 w=$3 all=() out=$work/out/$w-$1
	if [ "$w" = multi ]; then
		case $tool in imgcopy) all=(--multi-arch all) ;; skopeo) all=(--all) ;; esac
	fi
	case $tool:$s in
	imgcopy:reg-reg | imgcopy:warm) echo "$bin/imgcopy" copy -q --src-tls-verify=false --dest-tls-verify=false "${all[@]}" "docker://$A/$w:bench" "docker://$B/$w:bench" ;;
	imgcopy:reg-oci) echo "$bin/imgcopy" copy -q --src-tls-verify=false "${all[@]}" "docker://$A/$w:bench" "oci:$out:bench" ;;
	imgcopy:oci-reg) echo "$bin/imgcopy" copy -q --dest-tls-verify=false "${all[@]}" "oci:$work/src/$w:bench" "docker://$B/$w:bench" ;;
	imgcopy:reg-archive) echo "$bin/imgcopy" copy -q --src-tls-verify=false "docker://$A/$w:bench" "docker-archive:$out.tar:bench/$w:bench" ;;
	imgcopy-noresume:reg-reg) echo "$bin/imgcopy" copy -q --no-resume --src-tls-verify=false --dest-tls-verify=false "${all[@]}" "docker://$A/$w:bench" "docker://$B/$w:bench" ;;
	imgcopy-noresume:reg-oci) echo "$bin/imgcopy" copy -q --no-resume --src-tls-verify=false "${all[@]}" "docker://$A/$w:bench" "oci:$out:bench" ;;
	imgcopy-noresume:reg-archive) echo "$bin/imgcopy" copy -q --no-resume --src-tls-verify=false "docker://$A/$w:bench" "docker-archive:$out.tar:bench/$w:bench" ;;
	imgcopy-nofsync:reg-oci) echo "$bin/imgcopy" copy -q --fsync=false --src-tls-verify=false "${all[@]}" "docker://$A/$w:bench" "oci:$out:bench" ;;
	imgcopy-nofsync:reg-archive) echo "$bin/imgcopy" copy -q --fsync=false --src-tls-verify=false "docker://$A/$w:bench" "docker-archive:$out.tar:bench/$w:bench" ;;
	imgcopy:archive-reg) echo "$bin/imgcopy" copy -q --dest-tls-verify=false "docker-archive:$work/src/$w.tar" "docker://$B/$w:bench" ;;
	skopeo:reg-reg | skopeo:warm) echo skopeo --insecure-policy copy -q --src-tls-verify=false --dest-tls-verify=false "${all[@]}" "docker://$A/$w:bench" "docker://$B/$w:bench" ;;
	skopeo:reg-oci) echo skopeo --insecure-policy copy -q --src-tls-verify=false "${all[@]}" "docker://$A/$w:bench" "oci:$out:bench" ;;
	skopeo:oci-reg) echo skopeo --insecure-policy copy -q --dest-tls-verify=false "${all[@]}" "oci:$work/src/$w:bench" "docker://$B/$w:bench" ;;
	skopeo:reg-archive) echo skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$A/$w:bench" "docker-archive:$out.tar:bench/$w:bench" ;;
	skopeo:archive-reg) echo skopeo --insecure-policy copy -q --dest-tls-verify=false "docker-archive:$work/src/$w.tar" "docker://$B/$w:bench" ;;
	crane:reg-reg | crane:warm) echo crane copy --insecure "$A/$w:bench" "$B/$w:bench" ;;
	crane:reg-oci) echo crane pull --insecure --format oci "$A/$w:bench" "$out" ;;
	crane:oci-reg) echo crane push --insecure "$work/src/$w" "$B/$w:bench" ;;
	crane:reg-archive) echo crane pull --insecure "$A/$w:bench" "$out.tar" ;;
	crane:archive-reg) echo crane push --insecure "$work/src/$w.tar" "$B/$w:bench" ;;
	floor:reg-reg) echo "$bin/floor" copy -j "$jobs" "$A/$w:bench" "$B/$w:bench" ;;
	floor:warm) echo "$bin/floor" warm "$A/$w:bench" "$B/$w:bench" ;;
	floor:reg-oci | floor:reg-archive) echo "$bin/floor" pull -j "$jobs" -out "$out" "$A/$w:bench" ;;
	floor-sync:reg-oci | floor-sync:reg-archive) echo "$bin/floor" pull -sync -j "$jobs" -out "$out" "$A/$w:bench" ;;
	floor:oci-reg | floor:archive-reg) echo "$bin/floor" push -j "$jobs" "$work/src/$w" "$B/$w:bench" ;;
	floor-sendfile:oci-reg) echo "$bin/floor" push -j "$jobs" -send sendfile "$work/src/$w" "$B/$w:bench" ;;
	floor-nohash:oci-reg) echo "$bin/floor" push -j "$jobs" -send nohash "$work/src/$w" "$B/$w:bench" ;;
	*) return 1 ;;
	esac
}

# prepare TOOL SCENARIO WORKLOAD: untimed set-up so that every timed run starts cold (or, for
# warm, with the image already copied by the same tool), and with nothing left to write back:
# tools that do not fsync leave their whole output dirty in the page cache, and the next run's
# fsyncs would otherwise wait for it.
prepare() {
	local tool=$1 s=$2 w=$3
	rm -rf "$work/out/$w-$tool" "$work/out/$w-$tool.tar"
	case $s in
	reg-reg | oci-reg | archive-reg) wipe_b ;;
	warm)
		wipe_b
		if [ "$tool" = floor ]; then
			"$bin/floor" copy -j "$jobs" "$A/$w:bench" "$B/$w:bench"
		else
			# shellcheck disable=SC2046
			$(cmd "$tool" reg-reg "$w") >>"$work/runs.log" 2>&1
		fi
		;;
	esac
	sync
}

# check SCENARIO WORKLOAD: after a registry destination, the image must be there; copies that
# keep the manifest must have kept its digest.
check() {
	local s=$1 w=$2
	case $s in
	reg-reg | oci-reg | warm) "$bin/floor" warm "$A/$w:bench" "$B/$w:bench" 2>>"$work/runs.log" ;;
	archive-reg) "$bin/floor" pull "$B/$w:bench" 2>>"$work/runs.log" ;;
	*) true ;;
	esac
}

# registries_cpu: CPU seconds (user + system) registries A and B have used so far. Their share of a
# run shows where a copy's time goes on this 2-core machine: the registries hash and write
# every byte too, on the same cores as the tool.
tck=$(getconf CLK_TCK)
registries_cpu() {
	local pid ticks=0 t
	for pid in "${reg_pid[A]}" "${reg_pid[B]}"; do
		t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || t=0
		ticks=$((ticks + t))
	done
	LC_ALL=C awk -v t="$ticks" -v hz="$tck" 'BEGIN { printf "%.2f", t / hz }'
}

results=$work/results.tsv
echo -e "# scenario\tworkload\ttool\trun\tseconds\tpeak_rss_kib\tstatus\ttool_cpu_s\tregistries_cpu_s" >"$results"
for w in $workloads; do
	for s in $scenarios; do
		if [ "$w" = multi ] && [[ $s == *archive* ]]; then continue; fi # a docker-archive holds one platform
		for ((i = 1; i <= runs; i++)); do
			for tool in $tools; do
				command=$(cmd "$tool" "$s" "$w") || continue
				if ! prepare "$tool" "$s" "$w"; then
					log "$s $w run $i/$runs: $tool: set-up failed (see $work/runs.log)"
					echo -e "$s\t$w\t$tool\t$i\t-\t-\tsetup" >>"$results"
					continue
				fi
				echo "\$ $command" >>"$work/runs.log"
				status=0
				# shellcheck disable=SC2086
				# Wall time from bash's microsecond clock (/usr/bin/time's %e has 10 ms steps,
				# a third of a warm copy); peak RSS from /usr/bin/time.
				# CPU: the tool's user + system time, and what the registries used meanwhile.
				reg0=$(registries_cpu)
				start=$EPOCHREALTIME
				/usr/bin/time -f '%M %U %S' -o "$work/time.out" $command >>"$work/runs.log" 2>&1 || status=$?
				secs=$(LC_ALL=C awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
				reg1=$(registries_cpu)
				read -r rss usr sys < <(tail -n 1 "$work/time.out")
				cpu=$(LC_ALL=C awk -v u="${usr:-0}" -v s="${sys:-0}" 'BEGIN { printf "%.2f", u + s }')
				regcpu=$(LC_ALL=C awk -v a="$reg0" -v b="$reg1" 'BEGIN { printf "%.2f", b - a }')
				if [ "$status" = 0 ] && ! check "$s" "$w"; then status=99; fi # wrong result
				echo -e "$s\t$w\t$tool\t$i\t$secs\t$rss\t$status\t$cpu\t$regcpu" >>"$results"
				log "$s $w run $i/$runs: $tool ${secs}s $((rss / 1024))MiB cpu ${cpu}s registries ${regcpu}s status $status"
			done
		done
	done
done

# --- report ----------------------------------------------------------------------------------------
report=$work/results.md
{
	echo "## bench/run.sh $([ "$quick" = 1 ] && echo "quick (BENCH_QUICK=1)" || echo full) — $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr). Runs per cell: $runs (median)."
	echo "Tools: imgcopy $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo '?')$([ -n "$(cd "$root" && git status --porcelain 2>/dev/null | head -1)" ] && echo "+dirty"), skopeo $(skopeo --version | awk '{print $3}'), crane $(crane version), docker-registry $(docker-registry --version | awk '{print $3}'), floor -j $jobs."
	[ -n "$imgcopy_note" ] && echo && echo "**$imgcopy_note**"
	echo
	echo "Workloads (name, top digest, blob bytes, generation time):"
	echo
	echo '```'
	cat "$work/workloads.tsv"
	echo '```'
	echo
	"$bin/report" "$results"
	if grep -q "$(printf '\t99')$" "$results"; then
		echo
		echo "Status 99 = the tool exited 0 but the destination did not hold the expected image."
	fi
} >"$report"
cat "$report"
if [ -n "${BENCH_OUT:-}" ]; then cp "$report" "$BENCH_OUT"; cp "$results" "${BENCH_OUT%.md}.tsv"; fi
