#!/usr/bin/env bash
# Cluster benchmarks (issue 5 §8): a 3-node fulcrum cluster against a 3-member
# etcd 3.4 cluster, both on loopback, both with data directories on the same
# disk, in the same run, interleaved run by run so that drift on a shared
# machine hits both alike.
#
#  1. Writes through the API: wrk (-t1 -c1 and -t2 -c32) against the leader.
#     fulcrum: every request registers a new static backend
#     (POST /v1/services/NAME/backends, tools/bench/cluster_reg.lua); etcd:
#     every request is a put through the JSON gateway (/v3/kv/put,
#     tools/bench/cluster_put.lua) whose value is the same bytes as the
#     fulcrum body. One Raft entry per request on both sides; fsync on both
#     (fulcrum's storage always syncs; etcd syncs by default). RUNS runs of
#     DUR seconds; the table gives the median of each column.
#  2. Failover: TRIALS times, kill -9 the leader at a random moment while
#     bench_regclient writes to the survivors every 5 ms; the time from the
#     kill to the first write that succeeds after it. Then the killed node
#     restarts on its data and the cluster settles before the next trial.
#
# Usage: FULCRUM_BIN=build/release/bin tools/bench/cluster.sh (what
# `make bench BENCH=cluster` does). Environment: RUNS (5), DUR (5 s),
# TRIALS (20). Needs wrk and curl; installs etcd-server with apt-get when
# missing and root (its own service stays stopped: the members here use
# ports of their own). Every process started here is stopped and the temp
# directory removed on exit, also on ^C.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
REPO=$(pwd)
BIN=${FULCRUM_BIN:-$REPO/build/release/bin}
RUNS=${RUNS:-5}
DUR=${DUR:-5}
TRIALS=${TRIALS:-20}

die() { echo "cluster bench: $*" >&2; exit 1; }
[ -x "$BIN/fulcrumd" ] || die "no $BIN/fulcrumd (set FULCRUM_BIN to the release bin dir)"
for t in wrk curl timeout awk; do command -v "$t" >/dev/null || die "$t not installed"; done

# ---- etcd 3.4 (Debian etcd-server), with its packaged service kept off
HAVE_ETCD=1
if ! command -v etcd >/dev/null; then
	if [ "$(id -u)" = 0 ]; then
		echo "installing etcd-server (apt-get) ..."
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null 2>&1 ||
			{ apt-get update -qq >/dev/null 2>&1 &&
				DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null 2>&1; }
	fi
	command -v etcd >/dev/null || { HAVE_ETCD=0; echo "etcd-server missing and not installable: etcd columns skipped"; }
fi
if [ "$HAVE_ETCD" = 1 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
	# The package enables etcd.service on 2379/2380: not ours, and it would
	# compete for the disk. Our members use other ports anyway.
	if systemctl is-active --quiet etcd 2>/dev/null; then
		systemctl stop etcd 2>/dev/null && systemctl disable etcd 2>/dev/null
		echo "stopped and disabled the packaged etcd.service"
	fi
fi

W=$(mktemp -d /tmp/fulcrum-bench-cluster.XXXXXX)
declare -A FPID EPID

stop_all() {
	local p
	for p in "${FPID[@]}" "${EPID[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${FPID[@]}" "${EPID[@]}"; do
		timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	FPID=()
	EPID=()
}
cleanup() {
	local rc=$?
	set +e
	trap '' INT TERM
	[ -n "${WRKPID:-}" ] && kill -TERM "$WRKPID" 2>/dev/null
	stop_all
	# BENCH_KEEP_LOGS=DIR keeps the nodes' logs for a post-mortem.
	[ -n "${BENCH_KEEP_LOGS:-}" ] && mkdir -p "$BENCH_KEEP_LOGS" && cp "$W"/flog? "$W"/elog? "$BENCH_KEEP_LOGS"/ 2>/dev/null
	rm -rf "$W"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The failover client: built by `make bench` next to the other benchmarks.
CLIENT=$BIN/../bench/bench_regclient
if [ ! -x "$CLIENT" ]; then
	CLIENT=$W/bench_regclient
	gcc -std=gnu11 -D_GNU_SOURCE -O2 -o "$CLIENT" tools/bench/bench_regclient.c ||
		die "cannot build tools/bench/bench_regclient.c"
fi

# Ports: a random block above the kernel's ephemeral range (32768-60999 on
# Debian), so outgoing connections, a `make run` cluster, the e2e tests
# (10000-32709) and a packaged etcd on 2379/2380 do not collide with us.
BASE=$((61000 + (RANDOM % 390) * 10))
TOKEN=bench-cluster-admin-token-0123
fraft() { echo $((BASE + $1)); }
fapi() { echo $((BASE + 5 + $1)); }
eclient() { echo $((BASE + 10 + $1)); }
epeer() { echo $((BASE + 20 + $1)); }

# ---------------------------------------------------------------- fulcrum
f_conf() { # N
	local n=$1
	cat >"$W/f$n.conf" <<EOF
node = { name = "bench$n"; address = "10.98.0.$((n + 1))"; hash_seed = "0x62656e6368"; log_level = "warn"; };
dataplane = {
	lcores = "0@(0-1),1@(0-1)";
	no_huge = true; memory_mb = 64; in_memory = true; file_prefix = "fcbench$$n";
	port = { devargs = "net_null$n,no-rx=1"; rx_desc = 256; tx_desc = 256; };
	workers = 1; mbuf_cache = 32;
	idle = "adaptive"; idle_polls = 100; idle_sleep_us = 1000;
	flows = { capacity = 4096; };
};
services = ();
cluster = {
	id = $n; cluster_id = "0xbe4c4c";
	data_dir = "$W/fdata$n";
	raft_listen = "127.0.0.1:$(fraft "$n")";
	api_listen = "127.0.0.1:$(fapi "$n")";
	bootstrap = true;
	tick_ms = 10; heartbeat_ms = 50; election_min_ms = 150;
	peers = (
		{ id = 1; raft = "127.0.0.1:$(fraft 1)"; api = "127.0.0.1:$(fapi 1)"; },
		{ id = 2; raft = "127.0.0.1:$(fraft 2)"; api = "127.0.0.1:$(fapi 2)"; },
		{ id = 3; raft = "127.0.0.1:$(fraft 3)"; api = "127.0.0.1:$(fapi 3)"; }
	);
	admin_tokens = [ "$TOKEN" ];
};
EOF
}
f_start() { "$BIN/fulcrumd" -c "$W/f$1.conf" --status-file "$W/fs$1" >>"$W/flog$1" 2>&1 & FPID[$1]=$!; }
f_st() { [ -f "$W/fs$1" ] && sed -n "s/^$2=//p" "$W/fs$1"; }
f_api() { # N METHOD PATH [curl args]
	local n=$1 m=$2 p=$3
	shift 3
	curl -s --max-time 5 -H "Authorization: Bearer $TOKEN" -X "$m" "http://127.0.0.1:$(fapi "$n")$p" "$@"
}
# N CLASS: node N's count of API answers of CLASS (2xx, 4xx, 5xx) from /metrics.
f_metric() { curl -s --max-time 2 "http://127.0.0.1:$(fapi "$1")/metrics" | sed -n "s/^fulcrum_api_responses_total{code=\"$2\"} //p"; }
# The leader every node names, that node saying it leads; "" otherwise.
f_leader() {
	local n l="" x
	for n in 1 2 3; do
		x=$(f_st "$n" leader)
		[ -n "$x" ] && [ "$x" != 0 ] || return 0
		[ -z "$l" ] || [ "$l" = "$x" ] || return 0
		l=$x
	done
	[ "$(f_st "$l" role)" = leader ] && echo "$l"
}
# Ready: one leader for all three, every node ready (knows it, applied all).
f_ready() {
	local l n
	l=$(f_leader)
	[ -n "$l" ] || return 1
	for n in 1 2 3; do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$(fapi "$n")/readyz")" = 200 ] || return 1
	done
	echo "$l"
}

# ---------------------------------------------------------------- etcd
E_CLUSTER="e1=http://127.0.0.1:$(epeer 1),e2=http://127.0.0.1:$(epeer 2),e3=http://127.0.0.1:$(epeer 3)"
e_start() {
	local n=$1
	etcd --name "e$n" --data-dir "$W/edata$n" \
		--listen-peer-urls "http://127.0.0.1:$(epeer "$n")" \
		--initial-advertise-peer-urls "http://127.0.0.1:$(epeer "$n")" \
		--listen-client-urls "http://127.0.0.1:$(eclient "$n")" \
		--advertise-client-urls "http://127.0.0.1:$(eclient "$n")" \
		--initial-cluster "$E_CLUSTER" --initial-cluster-state new \
		--initial-cluster-token "fulcrum-bench-$BASE" \
		--heartbeat-interval 30 --election-timeout 150 \
		--logger zap --log-outputs stderr --log-level warn >>"$W/elog$n" 2>&1 &
	EPID[$n]=$!
}
# "member_id leader" of member N, from the gateway's maintenance/status.
e_status() {
	curl -s --max-time 2 -XPOST "http://127.0.0.1:$(eclient "$1")/v3/maintenance/status" -d '{}' |
		sed -n 's/.*"member_id":"\([0-9]*\)".*"leader":"\([0-9]*\)".*/\1 \2/p'
}
e_ready() {
	local n id ld l="" who=""
	for n in 1 2 3; do
		read -r id ld <<<"$(e_status "$n")"
		[ -n "${ld:-}" ] && [ "$ld" != 0 ] || return 1
		[ -z "$l" ] || [ "$l" = "$ld" ] || return 1
		l=$ld
		[ "$id" = "$ld" ] && who=$n
		curl -s --max-time 2 "http://127.0.0.1:$(eclient "$n")/health" | grep -q '"health":"true"' || return 1
	done
	[ -n "$who" ] && echo "$who"
}

wait_ready() { # f|e SECONDS: prints the leader's node number
	local t=$(($2 * 20)) l
	while [ "$t" -gt 0 ]; do
		l=$("${1}_ready") && [ -n "$l" ] && { echo "$l"; return 0; }
		sleep 0.05
		t=$((t - 1))
	done
	return 1
}

show_logs() {
	local f
	for f in "$W"/flog? "$W"/elog?; do
		[ -s "$f" ] || continue
		echo "---- $(basename "$f") (last 10 lines, EAL lines left out)"
		grep -v '^EAL\|^TELEMETRY' "$f" | tail -10
	done
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# ---------------------------------------------------------------- start both
for n in 1 2 3; do f_conf "$n"; done
"$BIN/fulcrumd" --check -c "$W/f1.conf" >/dev/null 2>&1 || die "generated fulcrum config does not load: $("$BIN/fulcrumd" --check -c "$W/f1.conf" 2>&1 | tail -3)"
for n in 1 2 3; do f_start "$n"; done
[ "$HAVE_ETCD" = 1 ] && for n in 1 2 3; do e_start "$n"; done
FL=$(wait_ready f 45) || { show_logs; die "fulcrum: no ready 3-node cluster within 45 s"; }
if [ "$HAVE_ETCD" = 1 ]; then
	EL=$(wait_ready e 45) || { show_logs; die "etcd: no ready 3-member cluster within 45 s"; }
fi

FSTYPE=$(df -PT "$W" | awk 'NR == 2 {print $2}')
BODY_LEN=$(printf '{"address":"10.100.100.100","port":10000}' | wc -c)
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); data dirs on $FSTYPE ($W)"
echo "fulcrum: 3 nodes, tick 10 ms, heartbeat 50 ms, election timeout random in [150, 300) ms, pre-vote + check-quorum"
[ "$HAVE_ETCD" = 1 ] && echo "etcd:    $(etcd --version | head -1), 3 members, --heartbeat-interval 30 --election-timeout 150 (timeout random in [150, 300) ms in 30 ms ticks), pre-vote off (3.4 default), check-quorum on"
echo "request body: fulcrum registration $BODY_LEN bytes; etcd value = the same $BODY_LEN bytes (base64 in the JSON put)"

# ---------------------------------------------------------------- 1. writes/s
PER_SVC=4000
# Services per wrk thread: enough for 8000 registrations/s per thread; a
# service holds at most 4096 backends. The runs' services are deleted after
# each run, so every run starts from the same (empty) state.
KSVC=$(((DUR * 8000 + PER_SVC - 1) / PER_SVC))

# run_wrk SYSTEM CONNS TAG: appends "rps p50_ms p99_ms errors" to $W/res_SYSTEM_CONNS
run_wrk() {
	local sys=$1 c=$2 tag=$3 th url script out l t k n svcs=()
	th=$([ "$c" = 1 ] && echo 1 || echo 2)
	if [ "$sys" = fulcrum ]; then
		l=$(wait_ready f 30) || { echo "fulcrum: cluster not ready before run $tag" >&2; return 1; }
		for ((t = 0; t < th; t++)); do
			for ((k = 0; k < KSVC; k++)); do
				svcs+=("$tag-t$t-$k")
				out=$(f_api "$l" POST /v1/services -w ' %{http_code}' -d "{\"name\":\"$tag-t$t-$k\",\"vip\":\"10.200.$((${#svcs[@]} / 250)).$((${#svcs[@]} % 250 + 1))\",\"port\":80,\"table_size\":4099}")
				# A missing service turns its share of the run into errors: say why.
				[ "${out##* }" = 201 ] || echo "fulcrum: creating service $tag-t$t-$k on node $l: ${out:-no answer}" >&2
			done
		done
		url=http://127.0.0.1:$(fapi "$l")
		script=tools/bench/cluster_reg.lua
	else
		l=$(wait_ready e 30) || { echo "etcd: cluster not ready before run $tag" >&2; return 1; }
		url=http://127.0.0.1:$(eclient "$l")
		script=tools/bench/cluster_put.lua
	fi
	local m4 m5 terms=""
	if [ "$sys" = fulcrum ]; then
		# To explain errors afterwards without slowing the client: the leader's
		# answer counters by class, and the nodes' terms (a leader change).
		m4=$(f_metric "$l" 4xx)
		m5=$(f_metric "$l" 5xx)
		terms=$(for n in 1 2 3; do f_st "$n" term; done | tr '\n' ' ')
	fi
	BENCH_TOKEN=$TOKEN BENCH_PREFIX=$tag BENCH_PER_SVC=$PER_SVC \
		wrk -t"$th" -c"$c" -d"${DUR}s" --timeout 5s -s "$script" "$url" >"$W/wrk.out" 2>&1 &
	WRKPID=$!
	wait "$WRKPID"
	WRKPID=
	out=$(grep '^RESULT' "$W/wrk.out")
	[ -n "$out" ] || { echo "$sys: wrk gave no result:" >&2; cat "$W/wrk.out" >&2; return 1; }
	if [ "$sys" = fulcrum ] && [ "$(echo "$out" | awk '{print $4 + $5}')" != 0 ]; then
		local a4 a5
		a4=$(f_metric "$l" 4xx)
		a5=$(f_metric "$l" 5xx)
		echo "   $sys run $tag: $(echo "$out" | awk '{print $4 " non-2xx, " $5 " socket errors"}');" \
			"node $l answered $((${a4:-0} - ${m4:-0})) 4xx, $((${a5:-0} - ${m5:-0})) 5xx;" \
			"terms ${terms}-> $(for n in 1 2 3; do f_st "$n" term; done | tr '\n' ' ')"
	fi
	# RESULT requests duration_us non2xx sockerr p50 p99 mean max
	echo "$out" | awk '{ok = $2 - $4; printf "%.1f %.2f %.2f %d\n", ok / ($3 / 1e6), $6 / 1000, $7 / 1000, $4 + $5}' >>"$W/res_${sys}_$c"
	# Delete this run's services (the next run reuses their VIPs); retried on the node
	# that leads now, and reported if it still fails.
	for k in "${svcs[@]}"; do
		for t in 1 2 3; do
			out=$(f_api "$l" DELETE "/v1/services/$k" -w ' %{http_code}')
			case "${out##* }" in 200 | 404) break ;; esac
			sleep 0.5
			l=$(wait_ready f 30) || break
		done
		case "${out##* }" in 200 | 404) ;; *) echo "fulcrum: deleting service $k: ${out:-no answer}" >&2 ;; esac
	done
	return 0
}

echo
echo "== 1. writes through the API: $RUNS runs x ${DUR} s per row, interleaved; wrk -t1 -c1 / -t2 -c32 to the leader"
for ((r = 1; r <= RUNS; r++)); do
	for c in 1 32; do
		run_wrk fulcrum "$c" "r${r}c$c" || { show_logs; exit 1; }
		[ "$HAVE_ETCD" = 1 ] && { run_wrk etcd "$c" "r${r}c$c" || { show_logs; exit 1; }; }
	done
	printf '   run %d/%d done\n' "$r" "$RUNS"
done

row() { # SYSTEM CONNS
	local f=$W/res_$1_$2
	[ -s "$f" ] || { printf '%-8s %7s %10s %9s %9s %7s  %s\n' "$1" "$2" - - - - "not measured"; return; }
	printf '%-8s %7s %10.0f %9.2f %9.2f %7d  %s\n' "$1" "$2" \
		"$(cut -d' ' -f1 "$f" | median)" "$(cut -d' ' -f2 "$f" | median)" \
		"$(cut -d' ' -f3 "$f" | median)" "$(awk '{s += $4} END {print s + 0}' "$f")" \
		"$(cut -d' ' -f1 "$f" | awk '{printf "%s%.0f", (NR > 1 ? " " : ""), $1}')"
}
echo
echo "Writes through the API (3 nodes, loopback, fsync on; median of $RUNS runs of ${DUR} s)"
printf '%-8s %7s %10s %9s %9s %7s  %s\n' system clients "writes/s" "p50 ms" "p99 ms" errors "writes/s of each run"
for c in 1 32; do
	row fulcrum "$c"
	row etcd "$c"
done
ratio() { # CONNS
	local a b
	[ -s "$W/res_fulcrum_$1" ] && [ -s "$W/res_etcd_$1" ] || { echo "n/a"; return; }
	a=$(cut -d' ' -f1 "$W/res_fulcrum_$1" | median)
	b=$(cut -d' ' -f1 "$W/res_etcd_$1" | median)
	awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2fx", (b > 0 ? a / b : 0)}'
}
R1=$(ratio 1)
R32=$(ratio 32)
echo "ratio fulcrum/etcd writes/s: 1 client $R1, 32 clients $R32 (target >= 2x with 32 clients: $(
	awk -v r="${R32%x}" 'BEGIN {print ((r + 0 >= 2) ? "met" : "NOT met")}'))"
echo "(p50/p99: medians over the runs of wrk's per-run percentiles; errors: non-2xx + socket errors, all runs)"

# ---------------------------------------------------------------- 2. failover
# f_trial / e_trial I: the client's line in TRIAL_OUT; restarts the victim.
# Not run in a subshell: the restarted pid must reach FPID/EPID (cleanup).
f_trial() {
	local i=$1 l s=() n out
	l=$(wait_ready f 30) || { TRIAL_OUT="FAILOVER ms=-1 (cluster not ready)"; return 1; }
	for n in 1 2 3; do [ "$n" != "$l" ] && s+=("127.0.0.1:$(fapi "$n")"); done
	f_api "$l" POST /v1/services -o /dev/null -d "{\"name\":\"fo-$i\",\"vip\":\"10.201.0.$i\",\"port\":80,\"table_size\":4099}"
	out=$("$CLIENT" failover --kind fulcrum --pid "${FPID[$l]}" --targets "$(IFS=,; echo "${s[*]}")" \
		--token "$TOKEN" --service "fo-$i" --seed "$i")
	wait "${FPID[$l]}" 2>/dev/null
	f_start "$l"
	TRIAL_OUT="$out victim=node$l"
}
e_trial() {
	local i=$1 l s=() n out
	l=$(wait_ready e 30) || { TRIAL_OUT="FAILOVER ms=-1 (cluster not ready)"; return 1; }
	for n in 1 2 3; do [ "$n" != "$l" ] && s+=("127.0.0.1:$(eclient "$n")"); done
	out=$("$CLIENT" failover --kind etcd --pid "${EPID[$l]}" --targets "$(IFS=,; echo "${s[*]}")" \
		--seed "$((1000 + i))")
	wait "${EPID[$l]}" 2>/dev/null
	e_start "$l"
	TRIAL_OUT="$out victim=e$l"
}

echo
echo "== 2. failover: $TRIALS trials each, interleaved; kill -9 of the leader 300-800 ms into a write loop (every 5 ms, round robin over the 2 survivors)"
for ((i = 1; i <= TRIALS; i++)); do
	f_trial "$i"
	o=$TRIAL_OUT
	echo "$o" | sed -n 's/.*ms=\([-0-9.]*\).*/\1/p' >>"$W/fo_fulcrum"
	line="   trial $i: fulcrum ${o#FAILOVER }"
	if [ "$HAVE_ETCD" = 1 ]; then
		e_trial "$i"
		o=$TRIAL_OUT
		echo "$o" | sed -n 's/.*ms=\([-0-9.]*\).*/\1/p' >>"$W/fo_etcd"
		line="$line | etcd ${o#FAILOVER }"
	fi
	echo "$line"
done
wait_ready f 30 >/dev/null || echo "fulcrum: cluster not ready after the last trial"

fo_row() { # SYSTEM TIMING
	local f=$W/fo_$1 ok bad
	[ -s "$f" ] || { printf '%-8s %6s %9s %9s %9s  %s\n' "$1" 0 - - - "$2"; return; }
	ok=$(awk '$1 >= 0' "$f")
	bad=$(awk '$1 < 0' "$f" | wc -l)
	printf '%-8s %6s %9.1f %9.1f %9.1f  %s%s\n' "$1" "$(echo "$ok" | grep -c .)" \
		"$(echo "$ok" | median)" "$(echo "$ok" | sort -g | tail -1)" "$(echo "$ok" | sort -g | tail -1)" \
		"$2" "$([ "$bad" -gt 0 ] && echo " ($bad trial(s) without a successful write in 10 s)")"
}
echo
echo "Failover: kill -9 of the leader -> first successful write through a survivor (ms, $TRIALS trials; p99 of $TRIALS = the max)"
printf '%-8s %6s %9s %9s %9s  %s\n' system trials median p99 max timing
fo_row fulcrum "heartbeat 50 ms, election timeout random in [150, 300) ms, tick 10 ms"
[ "$HAVE_ETCD" = 1 ] && fo_row etcd "heartbeat 30 ms, election timeout 150 ms (random in [150, 300) ms)"
FM=$(awk '$1 >= 0' "$W/fo_fulcrum" | median)
FX=$(awk '$1 >= 0' "$W/fo_fulcrum" | sort -g | tail -1)
echo "fulcrum targets: median <= 210 ms: $(awk -v m="$FM" 'BEGIN {print ((m + 0 <= 210) ? "met" : "NOT met")}'), p99 <= 320 ms: $(
	awk -v m="$FX" 'BEGIN {print ((m + 0 <= 320) ? "met" : "NOT met")}') (etcd measured here before: median 228 ms)"
exit 0
