#!/usr/bin/env bash
# End to end (issue 3 §4): real TCP (curl, wrk) and UDP through fulcrumd's VIPs
# in nat and dsr mode, in a lab of network namespaces (tools/lab.sh, prefix
# fe2e1). Usage: tests/e2e/nat_dsr.sh BINDIR (run from the repository root;
# the Makefile's e2e_nat_dsr wrappers pass the plain or asan bin directory).
# Exit 0 = pass, 77 = skipped (not root, no namespaces), else fail.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
. tests/e2e/e2e_lib.bash
e2e_init fe2e1 "${1:-}"

NAT=10.99.0.100 DSR=10.99.0.101
write_conf "$FD_CONF" "21:1 22:1 23:1" "21:1 22:1 23:1" "21:1 22:1 23:1"
fd_start

# 1. The node address belongs to fulcrumd alone: it answers ICMP echo.
if out=$(nsx client python3 tools/lab_client.py ping 10.99.0.2 3); then
	pass "ICMP echo to the node address 10.99.0.2: $(echo "$out" | tail -1)"
else
	fail "ICMP echo to the node address 10.99.0.2: $(echo "$out" | tr '\n' ';')"
fi

# 2. curl: 300 requests, one new connection each (Connection: close makes curl
# open a new one, from a new ephemeral port, for every URL of the glob).
for vip in $NAT $DSR; do
	mode=nat; [ "$vip" = "$DSR" ] && mode=dsr
	nsx client curl -s --max-time 30 -H 'Connection: close' "http://$vip/id?[1-300]" |
		awk '{print NR, $1}' >"$W/curl-$mode"
	ok=$(grep -c ' be[0-9]$' "$W/curl-$mode")
	if [ "$ok" -eq 300 ]; then pass "curl $mode $vip:80: 300/300 requests answered"; else fail "curl $mode $vip:80: $ok/300 requests answered"; fi
	check_spread "curl $mode spread over 300 new connections (ephemeral ports)" "$W/curl-$mode" "be1:1 be2:1 be3:1"
done

# 3. Fixed client ports: the same 5-tuples every run, so these counts repeat.
flows $NAT 80 20000 20299 >"$W/tcp-nat"
check_spread "tcp nat, 300 flows from ports 20000-20299" "$W/tcp-nat" "be1:1 be2:1 be3:1"
flows $DSR 80 20000 20299 >"$W/tcp-dsr"
check_spread "tcp dsr, 300 flows from ports 20000-20299" "$W/tcp-dsr" "be1:1 be2:1 be3:1"
# UDP: lab_client checks each echo comes back from the VIP (translated) intact.
flows $NAT 5353 20000 20299 --udp >"$W/udp-nat"
check_spread "udp nat, 300 flows from ports 20000-20299 (echo from the VIP)" "$W/udp-nat" "be1:1 be2:1 be3:1"

# 4. wrk, bounded: 8 keep-alive connections for 3 s; every request must succeed.
for vip in $NAT $DSR; do
	mode=nat; [ "$vip" = "$DSR" ] && mode=dsr
	nsx client timeout 30 wrk -t1 -c8 -d3s --timeout 5s "http://$vip/id" >"$W/wrk-$mode" 2>&1
	reqs=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$W/wrk-$mode")
	rps=$(sed -n 's/^Requests\/sec: *//p' "$W/wrk-$mode")
	errs=$(grep -E 'Socket errors|Non-2xx' "$W/wrk-$mode" | tr -s ' ' | tr '\n' ';')
	if [ -n "$reqs" ] && [ "$reqs" -gt 0 ] && [ -z "$errs" ]; then
		pass "wrk $mode $vip:80: $reqs requests in 3 s ($rps req/s), no socket errors, all 2xx"
	else
		fail "wrk $mode $vip:80: requests '${reqs:-none}' errors '$errs'"
		cat "$W/wrk-$mode"
	fi
done

# 5. Integrity of a many-segment transfer (TCP checksums rewritten right, no
# reordering or loss): 8 MB through each VIP, sha256 against the known content.
want=$(python3 tools/lab_client.py blobsum 8000000)
for vip in $NAT $DSR; do
	mode=nat; [ "$vip" = "$DSR" ] && mode=dsr
	nsx client curl -s --max-time 60 -o "$W/blob-$mode" "http://$vip/blob/8000000"
	got=$(sha256sum <"$W/blob-$mode" | cut -d' ' -f1)
	size=$(stat -c %s "$W/blob-$mode" 2>/dev/null || echo 0)
	if [ "$got" = "$want" ]; then pass "8 MB download via $mode: $size bytes, sha256 matches"; else fail "8 MB download via $mode: $size bytes, sha256 $got != $want"; fi
done

# 6. fulcrumd's own counters agree: every backend got new flows, and each
# service's new flows are the sum of its backends' (no reload in this test).
fd_stats >"$W/stats"
grep -E '^(service|  backend|worker|  drops)' "$W/stats" | sed 's/^/      /'
if out=$(awk '
	/^service / { s = $2; for (i = 1; i < NF; i++) if ($i == "new_flows") sf[s] = $(i + 1) }
	/^  backend / { for (i = 1; i < NF; i++) if ($i == "new_flows") { bf[s] += $(i + 1); if ($(i + 1) == 0) zero = zero " " s "/" $2 } }
	END {
		ok = 1
		for (s in sf) { printf "%s %d=%d; ", s, sf[s], bf[s]; if (sf[s] != bf[s]) ok = 0 }
		if (zero != "") { printf "backends without flows:%s", zero; ok = 0 }
		if (!("web-nat" in sf) || sf["web-nat"] < 600 || sf["web-dsr"] < 600 || sf["udp-nat"] < 300) { printf "too few new flows"; ok = 0 }
		exit !ok
	}' "$W/stats"); then
	pass "counters: service new_flows = sum over backends: $out"
else
	fail "counters: $out"
fi

fd_stop
e2e_finish
