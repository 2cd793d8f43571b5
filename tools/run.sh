#!/usr/bin/env bash
# make run: the single-node appliance in a lab of network namespaces
# (docs/lab.md). Builds the lab (tools/lab.sh, prefix fc), starts fulcrumd in
# fc-lb on conf/fulcrumd.conf, sends real requests through the VIPs from
# fc-client (curl for the nat and dsr web services, one UDP datagram per flow
# for udp-nat), and shows live how they spread over the backends, next to
# fulcrumd's own counters. Runs until Ctrl-C, or RUN_SECONDS=N seconds; on any
# exit it stops fulcrumd and deletes the lab.
#
#   RUN_SECONDS=N      stop by itself after N seconds (0 = until Ctrl-C)
#   RATE=N             new flows per service per round (default 20)
#   STATS_INTERVAL=S   fulcrumd --stats-interval (default 5)
# The forwarding-core demonstration that `make run` used to be is `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN_SECONDS=${RUN_SECONDS:-0}
RATE=${RATE:-20}
STATS_INTERVAL=${STATS_INTERVAL:-5}
CONF=conf/fulcrumd.conf
FULCRUMD=build/plain/bin/fulcrumd
NAT=10.99.0.100 DSR=10.99.0.101
BACKENDS=(be1 be2 be3)
export PREFIX=fc

if [ "$(id -u)" -ne 0 ]; then
	echo "make run: needs root (it creates network namespaces and gives a veth to DPDK); run it as root" >&2
	exit 1
fi
for v in RUN_SECONDS RATE STATS_INTERVAL; do
	case ${!v} in '' | *[!0-9]*) echo "make run: $v must be a whole number" >&2; exit 2 ;; esac
done
[ -x "$FULCRUMD" ] || { echo "make run: $FULCRUMD not built (run make)" >&2; exit 1; }

W=$(mktemp -d /tmp/fulcrum-run.XXXXXX)
LOG=/tmp/fulcrum-run-fulcrumd.log
FD_PID=
STOPPING=

cleanup() {
	local rc=$?
	set +e
	# A second Ctrl-C must not cut the cleanup short.
	trap '' INT TERM
	trap - EXIT
	[ -n "$STOPPING" ] && rc=0 # Ctrl-C is the way to stop: not an error
	echo
	echo "make run: stopping"
	if [ -n "$FD_PID" ] && kill -0 "$FD_PID" 2>/dev/null; then
		kill -TERM "$FD_PID"
		timeout 15 tail --pid="$FD_PID" -f /dev/null || kill -KILL "$FD_PID"
	fi
	[ -n "$FD_PID" ] && wait "$FD_PID" 2>/dev/null && echo "make run: fulcrumd stopped (exit 0)"
	tools/lab.sh down
	rm -rf "$W"
	echo "make run: fulcrumd's log is $LOG"
	exit "$rc"
}
trap cleanup EXIT
trap 'STOPPING=1; exit 0' INT TERM

tools/lab.sh up
"$FULCRUMD" --check -c "$CONF"
# In its own session, so that Ctrl-C reaches this script only, which then
# stops fulcrumd itself (SIGTERM) as part of the cleanup. setsid does not fork
# here (a background job of a script is no group leader): $! is fulcrumd.
setsid ip netns exec fc-lb "$FULCRUMD" -c "$CONF" --stats-interval "$STATS_INTERVAL" >"$LOG" 2>&1 &
FD_PID=$!
ready=
for t in $(seq 1 300); do
	if grep -qE 'published revision [0-9]+ .*: [0-9]+ services, ([0-9]+)/\1 backends resolved, gateway resolved' "$LOG"; then
		ready=1
		break
	fi
	kill -0 "$FD_PID" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$ready" ]; then
	echo "make run: fulcrumd did not come up (every backend and the gateway resolved) within 30 s:" >&2
	grep -v '^EAL\|^TELEMETRY' "$LOG" | tail -20 >&2
	exit 1
fi
grep -v '^EAL\|^TELEMETRY\|^== \|^service\|^  \|^worker\|^port\|^control' "$LOG" | sed 's/^/  fulcrumd: /'
ip netns exec fc-client python3 tools/lab_client.py ping 10.99.0.2 1 | tail -1 | sed 's/^/  ping node address 10.99.0.2: /'

declare -A total last
# cnt GREP-ARGS: a count that is a number even when grep was interrupted by
# the Ctrl-C that ends the run (set -e would stop before the cleanup message).
cnt() { local n; n=$(grep -c "$@" 2>/dev/null); echo "${n:-0}"; }
failed_nat=0 failed_dsr=0 failed_udp=0
# tally SERVICE FILE: add the backend names in FILE to the counts.
tally() {
	local svc=$1 b n
	for b in "${BACKENDS[@]}"; do
		n=$(cnt -x "$b" "$2")
		last[$svc.$b]=$n
		total[$svc.$b]=$((${total[$svc.$b]:-0} + n))
	done
}

udp_port=40000
round() {
	ip netns exec fc-client curl -s --max-time 5 -H 'Connection: close' "http://$NAT/id?[1-$RATE]" >"$W/nat" || true
	ip netns exec fc-client curl -s --max-time 5 -H 'Connection: close' "http://$DSR/id?[1-$RATE]" >"$W/dsr" || true
	# UDP from a rotating window of source ports: each datagram a new flow.
	ip netns exec fc-client python3 tools/lab_client.py flows $NAT 5353 $udp_port $((udp_port + RATE - 1)) --udp --timeout 1 |
		awk '{print $2}' >"$W/udp" || true
	udp_port=$((udp_port + RATE))
	[ $udp_port -gt 60000 ] && udp_port=40000
	tally nat "$W/nat"
	tally dsr "$W/dsr"
	tally udp "$W/udp"
	failed_nat=$((failed_nat + RATE - $(cnt '^be' "$W/nat")))
	failed_dsr=$((failed_dsr + RATE - $(cnt '^be' "$W/dsr")))
	failed_udp=$((failed_udp + RATE - $(cnt '^be' "$W/udp")))
}

# row SVC LABEL FAILED: one line of the client-side table.
row() {
	local svc=$1 b sum=0 line
	for b in "${BACKENDS[@]}"; do sum=$((sum + ${total[$svc.$b]:-0})); done
	line=$(printf '  %-29s' "$2")
	for b in "${BACKENDS[@]}"; do
		line+=$(printf ' %6d %3d%% (+%2d)' "${total[$svc.$b]:-0}" $((sum ? 100 * ${total[$svc.$b]:-0} / sum : 0)) "${last[$svc.$b]:-0}")
	done
	printf '%s %7d %6d\n' "$line" "$sum" "$3"
}

show() {
	local elapsed=$1
	echo "== Fulcrum lab, t=${elapsed}s: fulcrumd (pid $FD_PID) in fc-lb on fc-lb0, node 10.99.0.2; $([ "$RUN_SECONDS" -gt 0 ] && echo "stops after ${RUN_SECONDS}s" || echo "Ctrl-C stops and cleans up")"
	echo "  client side: $RATE new flows per service per round from fc-client 10.99.0.10; answers per backend (share, +this round)"
	printf '  %-29s %20s %20s %20s %7s %6s\n' service "be1 10.99.0.21" "be2 10.99.0.22" "be3 10.99.0.23" total failed
	row nat "web-nat $NAT:80 nat" "$failed_nat"
	row dsr "web-dsr $DSR:80 dsr" "$failed_dsr"
	row udp "udp-nat $NAT:5353 nat" "$failed_udp"
	# fulcrumd's side: the last complete --stats-interval printout.
	awk '/^== fulcrumd counters/ { buf = $0 "\n"; inb = 1; next }
		inb && /^(service|  backend|worker|  drops)/ { buf = buf $0 "\n" }
		inb && /^control:/ { done = buf; inb = 0 }
		END { printf "%s", done }' "$LOG" |
		sed -e 's/^== fulcrumd counters, \(revision [0-9]*\) (\(.*\))$/  fulcrumd'"'"'s own counters (\1, \2; printed every '"$STATS_INTERVAL"' s, as on SIGUSR1):/' \
			-e 's/^\([^ ]\)/    \1/' -e 's/^  \( *\(backend\|drops\)\)/      \1/'
}

tty=
[ -t 1 ] && tty=1
start=$SECONDS
shown=-1
echo "make run: sending traffic; $([ -n "$tty" ] && echo "the table refreshes every second" || echo "a table every ${STATS_INTERVAL}s (stdout is not a terminal)")"
while :; do
	kill -0 "$FD_PID" 2>/dev/null || { echo "make run: fulcrumd exited:" >&2; grep -v '^EAL' "$LOG" | tail -20 >&2; exit 1; }
	round
	elapsed=$((SECONDS - start))
	done_now=
	[ "$RUN_SECONDS" -gt 0 ] && [ "$elapsed" -ge "$RUN_SECONDS" ] && done_now=1
	if [ -n "$tty" ]; then
		printf '\033[H\033[2J'
		show "$elapsed"
	elif [ -n "$done_now" ] || [ $((elapsed / STATS_INTERVAL)) -ne "$shown" ]; then
		shown=$((elapsed / STATS_INTERVAL))
		show "$elapsed"
	fi
	[ -n "$done_now" ] && break
	sleep 1
done
echo "make run: ran ${RUN_SECONDS}s"
