#!/usr/bin/env bash
# lab bench: end to end through the namespace lab (tools/lab.sh), the same
# client (wrk in PREFIX-client) in the same run, median of ROUNDS interleaved
# rounds:
#   keep-alive requests/s      wrk -t1 -cCONNS -dDURATION URL
#   new connections/s          the same with "Connection: close" (one request per connection)
# through
#   direct          straight to one backend (10.99.0.21:8081): the lab's ceiling
#   nftables        the kernel in PREFIX-lb as balancer: VIP and node address on
#                   fc-lb0, ip_forward, DNAT with `jhash ip saddr . tcp sport mod 3
#                   map {...}` + SNAT to the node address (the same nat semantics)
#   fulcrumd        nat VIP 10.99.0.100:80 on net_af_packet fc-lb0 (no kernel
#                   address), idle policy adaptive (the lab's) and busy
# Backends: nginx (one worker process each, `return 200 "beN"`) on port 8081 in
# PREFIX-be1..3 (the python servers tools/lab.sh starts would be the bottleneck).
#
# Needs root (namespaces); prints "skipped: not root" and exits 0 otherwise.
# FULCRUM_BIN: the directory holding fulcrumd (make bench sets it).
# Env: ROUNDS (5), DURATION (4 s per wrk run), CONNS (32), BENCH_PREFIX (fb).
set -u

if [ "$(id -u)" -ne 0 ]; then
	echo "lab: skipped: not root (the lab needs network namespaces)"
	exit 0
fi
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${FULCRUM_BIN:-$ROOT/build/release/bin}
FULCRUMD=$BIN/fulcrumd
LAB=$ROOT/tools/lab.sh
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-4}
CONNS=${CONNS:-32}
export PREFIX=${BENCH_PREFIX:-fb}
CL=$PREFIX-client
LB=$PREFIX-lb

for c in wrk nginx nft ip ethtool curl; do
	command -v "$c" >/dev/null || { echo "lab: skipped: $c not installed (make deps)"; exit 0; }
done
[ -x "$FULCRUMD" ] || { echo "lab: $FULCRUMD not found (FULCRUM_BIN)" >&2; exit 1; }
[ -x "$LAB" ] || { echo "lab: $LAB not found" >&2; exit 1; }

WORK=$(mktemp -d /tmp/fulcrum-bench-lab.XXXXXX)
FPID=""

stop_fulcrumd() {
	[ -n "$FPID" ] || return 0
	kill -TERM "$FPID" 2>/dev/null
	for _ in $(seq 1 50); do kill -0 "$FPID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$FPID" 2>/dev/null
	wait "$FPID" 2>/dev/null
	FPID=""
}

cleanup() {
	stop_fulcrumd
	"$LAB" down >/dev/null 2>&1 # kills nginx and everything else in the namespaces
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "lab: interrupted" >&2; exit 130' INT TERM

# ---- the lab and the backends ----

"$LAB" up >/dev/null || { echo "lab: tools/lab.sh up failed" >&2; exit 1; }
for i in 1 2 3; do
	d=$WORK/be$i
	mkdir -p "$d"
	cat >"$d/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 8192; }
http {
	access_log off;
	client_body_temp_path $d; proxy_temp_path $d; fastcgi_temp_path $d;
	uwsgi_temp_path $d; scgi_temp_path $d;
	keepalive_requests 1000000;
	server { listen 8081 backlog=4096; location / { return 200 "be$i\n"; } }
}
EOF
	ip netns exec "$PREFIX-be$i" nginx -p "$d" -c "$d/nginx.conf" </dev/null >"$d/out.log" 2>&1 &
done
for i in 1 2 3; do
	for _ in $(seq 1 50); do
		ip netns exec "$CL" curl -s -m 1 "http://10.99.0.2$i:8081/" >/dev/null && break
		sleep 0.1
	done
done

# ---- balancers ----

nft_up() {
	ip -n "$LB" addr add 10.99.0.2/24 dev fc-lb0
	ip -n "$LB" addr add 10.99.0.100/32 dev fc-lb0
	# One-armed: packets leave by the interface they came in on; no redirects.
	ip netns exec "$LB" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 \
		net.ipv4.conf.fc-lb0.send_redirects=0
	ip netns exec "$LB" nft -f - <<'EOF'
table ip fbbench {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr 10.99.0.100 tcp dport 80 dnat to jhash ip saddr . tcp sport mod 3 map { 0 : 10.99.0.21, 1 : 10.99.0.22, 2 : 10.99.0.23 } : 8081
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		ip daddr 10.99.0.0/24 tcp dport 8081 snat to 10.99.0.2
	}
}
EOF
}

nft_down() {
	ip netns exec "$LB" nft delete table ip fbbench 2>/dev/null
	ip netns exec "$LB" sysctl -qw net.ipv4.ip_forward=0
	ip -n "$LB" addr flush dev fc-lb0 # LAB.md: the kernel must not own fulcrumd's addresses
}

fulcrumd_conf() { # IDLE -> path
	local f=$WORK/fulcrumd-$1.conf
	cat >"$f" <<EOF
node = { name = "fb-lb"; address = "10.99.0.2"; gateway = "10.99.0.10";
	 hash_seed = "0x46756c6372756d31"; log_level = "warn"; };
dataplane = {
	lcores = "0@(0-1),1@(0-1)";
	no_huge = true; memory_mb = 256; in_memory = true;
	eal_args = [ "--no-pci" ];
	port = { devargs = "net_af_packet0,iface=fc-lb0"; };
	workers = 1;
	idle = "$1"; idle_polls = 300; idle_sleep_us = 20;
	flows = { capacity = 262144; };
};
services = ( { name = "web-nat"; vip = "10.99.0.100"; port = 80; proto = "tcp"; mode = "nat";
	announce = true;
	backends = ( { address = "10.99.0.21"; port = 8081; }, { address = "10.99.0.22"; port = 8081; },
		     { address = "10.99.0.23"; port = 8081; } ); } );
EOF
	echo "$f"
}

fulcrumd_up() { # IDLE
	local conf
	conf=$(fulcrumd_conf "$1")
	ip netns exec "$LB" "$FULCRUMD" -c "$conf" </dev/null >>"$WORK/fulcrumd.log" 2>&1 &
	FPID=$!
	# Up when every backend answers through the VIP (ARP for all of them resolved).
	local seen="" t
	for t in $(seq 1 100); do
		kill -0 "$FPID" 2>/dev/null || { echo "lab: fulcrumd exited; log:" >&2; tail -20 "$WORK/fulcrumd.log" >&2; return 1; }
		seen="$seen $(ip netns exec "$CL" curl -s -m 1 http://10.99.0.100/ 2>/dev/null)"
		[[ $seen == *be1* && $seen == *be2* && $seen == *be3* ]] && return 0
		sleep 0.1
	done
	echo "lab: fulcrumd did not reach all backends in 10 s (saw:$seen)" >&2
	return 1
}

# SIGUSR1: keep fulcrumd's per-backend counters, drops and port statistics of this run.
fulcrumd_stats() { # IDLE
	local before
	before=$(wc -l <"$WORK/fulcrumd.log")
	kill -USR1 "$FPID" 2>/dev/null
	sleep 0.3
	tail -n +$((before + 1)) "$WORK/fulcrumd.log" | grep -E "^  backend|^worker|^  drops|^port" >"$WORK/stats-$1"
}

# ---- measurement ----

ERRS=$WORK/errors
wrk_rate() { # LABEL URL [wrk args...]: prints requests/s (integer)
	local label=$1 url=$2 out rate e
	shift 2
	out=$(ip netns exec "$CL" timeout $((DURATION + 15)) wrk -t1 -c"$CONNS" -d"${DURATION}s" "$@" "$url" 2>&1)
	rate=$(awk '/^Requests\/sec:/ { printf "%d", $2 }' <<<"$out")
	e=$(grep -E "Socket errors|Non-2xx" <<<"$out" | tr -s ' ' | tr '\n' ' ')
	[ -n "$e" ] && echo "$label: $e" >>"$ERRS"
	echo "${rate:-0}"
}

declare -A KA NC
measure() { # NAME URL
	KA[$1]="${KA[$1]:-} $(wrk_rate "$1 keep-alive" "$2")"
	NC[$1]="${NC[$1]:-} $(wrk_rate "$1 new-conn" "$2" -H "Connection: close")"
	printf "  round %d  %-18s keep-alive %7s req/s   new connections %6s /s\n" "$r" "$1" \
		"${KA[$1]##* }" "${NC[$1]##* }"
}

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END {
	if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# Median over rounds of the per-round ratio A/B (rounds are paired: same load).
paired() { awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, " "); split(b, y, " "); m = 0
	for (i = 1; i <= n; i++) if (y[i] > 0) r[++m] = x[i] / y[i]
	if (m == 0) { print "n/a"; exit }
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
	printf "%.2f", (m % 2) ? r[(m + 1) / 2] : (r[m / 2] + r[m / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
verdict() { awk -v x="$1" 'BEGIN { print (x + 0 >= 1.0) ? "met" : "NOT met" }'; }

for idle in adaptive busy; do
	"$FULCRUMD" --check -c "$(fulcrumd_conf "$idle")" >/dev/null || { echo "lab: bad fulcrumd config" >&2; exit 1; }
done
echo "lab: wrk -t1 -c$CONNS, ${DURATION} s per run, $ROUNDS interleaved rounds; 2 vCPUs shared by wrk,"
echo "     3 nginx backends, the balancer and the kernel's bridge; load average at start $(cut -d' ' -f1 /proc/loadavg)"
fail=0
for r in $(seq 1 "$ROUNDS"); do
	measure "direct (be1)" http://10.99.0.21:8081/
	nft_up
	measure "nftables DNAT" http://10.99.0.100/
	nft_down
	for idle in adaptive busy; do
		if fulcrumd_up "$idle"; then
			measure "fulcrumd $idle" http://10.99.0.100/
			fulcrumd_stats "$idle"
		else
			fail=1
		fi
		stop_fulcrumd
	done
done

echo
echo "medians of $ROUNDS rounds (load average now $(cut -d' ' -f1 /proc/loadavg)):"
printf "  %-18s %12s %18s\n" "" "keep-alive req/s" "new connections/s"
declare -A MKA MNC
for k in "direct (be1)" "nftables DNAT" "fulcrumd adaptive" "fulcrumd busy"; do
	MKA[$k]=$(median <<<"${KA[$k]:-}")
	MNC[$k]=$(median <<<"${NC[$k]:-}")
	printf "  %-18s %12s %18s\n" "$k" "${MKA[$k]}" "${MNC[$k]}"
done
echo "ratios of the medians (targets: fulcrumd >= 1.0x nftables on both):"
for idle in adaptive busy; do
	k="fulcrumd $idle"
	a=$(ratio "${MKA[$k]}" "${MKA[nftables DNAT]}")
	b=$(ratio "${MNC[$k]}" "${MNC[nftables DNAT]}")
	printf "  %-18s / nftables: keep-alive %sx (%s), new connections %sx (%s)\n" "$k" "$a" \
		"$(verdict "$a")" "$b" "$(verdict "$b")"
done
echo "median of the per-round ratios (each round's runs are back to back: less load drift):"
for idle in adaptive busy; do
	k="fulcrumd $idle"
	printf "  %-18s / nftables: keep-alive %sx, new connections %sx\n" "$k" \
		"$(paired "${KA[$k]:-}" "${KA[nftables DNAT]:-}")" "$(paired "${NC[$k]:-}" "${NC[nftables DNAT]:-}")"
done
for k in "nftables DNAT" "fulcrumd adaptive" "fulcrumd busy"; do
	printf "  %-18s / direct:   keep-alive %sx, new connections %sx\n" "$k" \
		"$(ratio "${MKA[$k]}" "${MKA[direct (be1)]}")" "$(ratio "${MNC[$k]}" "${MNC[direct (be1)]}")"
done
for idle in adaptive busy; do
	if [ -s "$WORK/stats-$idle" ]; then
		echo "fulcrumd $idle, counters at the end of its last run (SIGUSR1):"
		sed 's/^/  /' "$WORK/stats-$idle"
	fi
done
if [ -s "$ERRS" ]; then
	echo "wrk reported errors:"
	sed 's/^/  /' "$ERRS"
fi
exit $fail
