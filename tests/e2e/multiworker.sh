#!/usr/bin/env bash
# End to end (issue 3): fulcrumd with two workers on one net_af_packet port
# (qpairs=2: the kernel's PACKET_FANOUT hash spreads flows over the two RX
# queues), a nat and a dsr service, real backends (tools/lab.sh, prefix
# fe2emw). Every nat reply that the kernel hashes to the worker that does not
# own its SNAT port must be handed to the owner (reply steering,
# docs/dataplane.md); without that, about half the nat connections never
# complete. Checks: 200 curl connections per VIP and 200 UDP exchanges all
# succeed, both workers receive traffic from their own RX queue, replies were
# handed off, and the handoff counters add up.
# Usage: tests/e2e/multiworker.sh [BINDIR] (the Makefile's e2e_multiworker
# wrappers pass the plain or asan bin directory; without one, build/plain/bin
# of this tree, so that tools/run-tests.sh tests/e2e/multiworker.sh works).
# Exit 0 = pass, 77 = skipped (not root, no namespaces), else fail.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
. tests/e2e/e2e_lib.bash
e2e_init fe2emw "${1:-build/plain/bin}"

NAT=10.99.0.100 DSR=10.99.0.101
N=200

# The shared lab configuration (write_conf), turned into two workers on two
# queue pairs with floating lcores (LAB.md: three polling threads on two CPUs
# must let the kernel schedule them) and the adaptive idle policy it already
# has. Each substitution is checked, so a change of write_conf's text fails
# here instead of silently testing one worker.
write_conf "$FD_CONF" "21:1 22:1 23:1" "21:1 22:1 23:1" "21:1 22:1 23:1"
sed -i -e 's/^\tworkers = 1;$/\tworkers = 2;/' \
	-e 's/devargs = "net_af_packet0,iface=fc-lb0";/devargs = "net_af_packet0,iface=fc-lb0,qpairs=2";/' \
	-e 's/^\tlcores = "0@(0-1),1@(0-1)";$/\tlcores = "0@(0-1),1@(0-1),2@(0-1)";/' "$FD_CONF"
for want in '^	workers = 2;$' 'iface=fc-lb0,qpairs=2"' '^	lcores = "0@\(0-1\),1@\(0-1\),2@\(0-1\)";$' '^	idle = "adaptive";$'; do
	grep -qE "$want" "$FD_CONF" || die "config for two workers: no line matching '$want' in $FD_CONF"
done
fd_start
if grep -q '2 worker(s)' "$FD_LOG"; then pass "fulcrumd runs 2 workers on net_af_packet qpairs=2 with a nat service"; else die "fulcrumd did not report 2 workers"; fi

# 1. curl: N requests per VIP, a new connection each (Connection: close), 20
# at a time. Bounded: a connection whose SYN-ACK is lost on the wrong worker
# never completes (the retransmitted SYN keeps its SNAT port, so the SYN-ACK
# is hashed the same way again), and gives up after 3 s.
for vip in $NAT $DSR; do
	mode=nat; [ "$vip" = "$DSR" ] && mode=dsr
	nsx client curl -s -Z --parallel-max 20 --connect-timeout 3 --max-time 10 \
		-H 'Connection: close' "http://$vip/id?[1-$N]" 2>"$W/curl-$mode.err" | awk '{print NR, $1}' >"$W/curl-$mode"
	ok=$(grep -c ' be[0-9]$' "$W/curl-$mode")
	if [ "$ok" -eq "$N" ]; then pass "curl $mode $vip:80: $ok/$N connections answered"; else fail "curl $mode $vip:80: $ok/$N connections answered"; fi
	check_spread "curl $mode spread over $ok connections" "$W/curl-$mode" "be1:1 be2:1 be3:1"
done

# 2. UDP: N exchanges from fixed client ports; lab_client checks that each echo
# comes back from the VIP (translated) and intact.
flows $NAT 5353 21000 $((21000 + N - 1)) --udp --timeout 2 --parallel 16 >"$W/udp-nat"
ok=$(grep -c ' be[0-9]$' "$W/udp-nat")
if [ "$ok" -eq "$N" ]; then pass "udp nat $NAT:5353: $ok/$N echoes from the VIP"; else fail "udp nat $NAT:5353: $ok/$N echoes ($(awk '{print $2}' "$W/udp-nat" | sort | uniq -c | tr -s ' \n' ' '))"; fi

# 3. The workers' counters (SIGUSR1). Per worker: rx is what fwd processed,
# handed-in frames included, so its own RX queue delivered rx - handoff_in +
# handoff (dpdk_dp.h). The traffic has stopped, so the rings are drained and
# every frame handed off was either taken by its owner or dropped (full).
fd_stats >"$W/stats"
grep -E '^(worker|  drops)' "$W/stats" | sed 's/^/      /'
if out=$(awk "$STATS_AWK"'
	/^worker [0-9]+: / {
		if (field("handoff") < 0) { printf "worker %s: no handoff counters; ", $2; bad = 1; next }
		handoff_line()
		total += q[w]
	}
	END {
		if (nw != 2 && !bad) { printf "%d worker lines (expected 2)", nw; exit 1 }
		handoff_report()
		if (bad) exit 1
		# Both queues carry traffic: the fanout hash spreads ~%d flows, so
		# each worker gets far more than a tenth of the frames.
		for (w in q) if (q[w] < total / 10) { printf "; worker %s got too little of its own", w; exit 1 }
		if (!handoff_ok()) exit 1
	}' "$W/stats"); then
	pass "both workers received traffic and nat replies were steered: $out"
else
	fail "per-worker counters: $out"
fi
info "nat replies dropped without a flow (no_reverse_flow): $(sed -n 's/.*no_reverse_flow=\([0-9]*\).*/\1/p' "$W/stats" | awk '{s += $1} END {print s + 0}')"

fd_stop
e2e_finish
