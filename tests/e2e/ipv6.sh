#!/usr/bin/env bash
# End to end (issue 3): fulcrumd learns its IPv6 neighbours by itself. A dsr
# service on an IPv6 VIP with three backends and an IPv6 gateway, none of them
# in `neighbours`: fulcrumd must find their MACs with neighbour solicitations
# and learn them from the advertisements (controlplane/main.c control_packet,
# controlplane/neigh.c), and its workers must answer the client's
# solicitations for the VIP and the node address (dataplane/fwd.c fwd_ns).
# Checked with the real kernel stacks of the lab's namespaces (tools/lab.sh,
# prefix fe2e6, IPv6 added by lab6_up in e2e_lib.bash):
#   - a fully resolved state is published with no static entry, and the MACs
#     fulcrumd learned are the backends' and the client's real ones;
#   - a proxy on the segment answering for a backend (Override clear) does
#     not take that backend's entry; entries are re-confirmed, not lost;
#   - the client's kernel resolved the VIP and the node address to fulcrumd's
#     port MAC (ip -6 neigh), and fulcrumd answers ICMPv6 echo;
#   - 60 curl -6 requests through the VIP all succeed, every backend serves
#     some (its own access log agrees with the bodies), and no packet was
#     dropped for an unresolved neighbour once the state was resolved;
#   - a backend that moves to a new MAC and says so (unsolicited
#     advertisement, Override set) is followed.
# nat over IPv6 is not tested: the DPDK glue has no IPv6 SNAT pool yet.
# Usage: tests/e2e/ipv6.sh BINDIR, from the repository root. Exit 0 = pass,
# 77 = skipped (not root, no namespaces, no IPv6 in the kernel), else fail.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
. tests/e2e/e2e_lib.bash
[ -e /proc/net/if_inet6 ] || skip "no IPv6 in this kernel"
e2e_init fe2e6 "${1:-}"

VIP=$LAB6_VIP NODE=$SUBNET6:2 CLIENT=$SUBNET6:10 N=60
lab6_up "$W" || die "IPv6 addresses or servers in the lab did not come up"

# arp_timeout = 2: entries are re-confirmed (a solicitation each) about once a
# second, so the few seconds of this test see several rounds.
cat >"$FD_CONF" <<EOF
# Written by tests/e2e/ipv6.sh for the lab of prefix $PREFIX. No neighbours
# list: every next hop must be resolved by neighbour discovery.
node = {
	name = "$PREFIX-lb";
	address6 = "$NODE";
	gateway = "$CLIENT";
	log_level = "info";
};
dataplane = {
	lcores = "0@(0-1),1@(0-1)";
	no_huge = true;
	memory_mb = 256;
	in_memory = true;
	eal_args = [ "--no-pci" ];
	port = { devargs = "net_af_packet0,iface=fc-lb0"; };
	workers = 1;
	idle = "adaptive";
	idle_polls = 300;
	idle_sleep_us = 20;
	arp_retry_ms = 200;
	arp_timeout = 2;
};
services = (
	{ name = "web6-dsr"; vip = "$VIP"; port = 80; proto = "tcp"; mode = "dsr"; announce = true;
	  backends = ( { address = "$SUBNET6:21"; }, { address = "$SUBNET6:22"; }, { address = "$SUBNET6:23"; } ); }
);
EOF
# fd_start waits (30 s at most) for a state with every backend and the
# gateway resolved, and fails the test without one.
fd_start
PORT_MAC=$(fd_port_mac)
[ -n "$PORT_MAC" ] || die "fulcrumd did not log its port MAC"

# drops_of STATS REASON: the drop counter of that reason, summed over workers.
drops_of() { grep '^  drops:' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | awk '{s += $1} END {print s + 0}'; }

# check_neighbours WHAT STATS: every wanted address reachable at the MAC its
# kernel has now, and no static entry.
check_neighbours() {
	local what=$1 stats=$2 want out
	want="$SUBNET6:21=$(lab_mac be1 fc-be0) $SUBNET6:22=$(lab_mac be2 fc-be0) $SUBNET6:23=$(lab_mac be3 fc-be0) $CLIENT=$(lab_mac client fc-cl0)"
	if out=$(awk -v want="$want" '
		BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) { split(w[i], kv, "="); mac[kv[1]] = kv[2] } }
		$1 == "neighbour" {
			if ($4 == "static") { printf "static entry %s; ", $2; bad = 1 }
			if ($2 in mac) { seen[$2] = 1; if ($3 != mac[$2] || $4 != "reachable") { printf "%s is %s %s, want %s reachable; ", $2, $3, $4, mac[$2]; bad = 1 } }
		}
		END { for (a in mac) if (!(a in seen)) { printf "%s missing; ", a; bad = 1 }; exit bad }' "$stats"); then
		pass "$what: 3 backends and the gateway reachable, each at its kernel's MAC, no static entries"
	else
		fail "$what: $out"
		grep '^  neighbour' "$stats" | sed 's/^/      /'
	fi
}

# curl_round TAG COUNT: COUNT curl -6 requests through the VIP, a new
# connection each (curl's URL glob leaves the bracketed IPv6 literal alone and
# expands the range); every one must be answered by a backend. Sets BODIES to
# "be1=N be2=N ..." counted from the answers.
curl_round() {
	local tag=$1 n=$2 ok
	nsx client curl -6 -s --max-time 60 -H 'Connection: close' "http://[$VIP]/id?$tag-[1-$n]" |
		awk '{print NR, $1}' >"$W/curl-$tag"
	ok=$(grep -c ' be[0-9]$' "$W/curl-$tag")
	if [ "$ok" -eq "$n" ]; then pass "curl -6 dsr [$VIP]:80 (round $tag): $ok/$n requests answered"; else fail "curl -6 dsr [$VIP]:80 (round $tag): $ok/$n requests answered"; fi
	BODIES=$(awk '{print $2}' "$W/curl-$tag" | sort | uniq -c | awk '{printf "%s%s=%d", sep, $2, $1; sep = " "}')
}

# served TAG BE: the requests of round TAG that BE's own access log shows.
served() { grep -c "\"GET /id?$1-" "$W/$2-http.log"; }

# 1. What fulcrumd learned, before any client traffic.
fd_stats >"$W/stats0"
grep '^  neighbour' "$W/stats0" | sed 's/^/      /'
check_neighbours "resolved by neighbour discovery" "$W/stats0"
learned=$(sed -n 's/^control: arp_learned \([0-9]*\) .*/\1/p' "$W/stats0" | tail -1)
if [ "${learned:-0}" -ge 4 ]; then pass "control: $learned neighbours learned from the wire"; else fail "control: arp_learned '${learned:-}' < 4"; fi
nn0=$(drops_of "$W/stats0" no_neighbour)

# 2. A router on the segment that proxies ND for be1's address (RFC 4861
# 7.2.8): the client, which is the gateway too, with proxy_ndp. It answers
# fulcrumd's (re-confirming) solicitations for be1 with its own MAC and
# Override clear, a random moment after be1 itself (a proxy delays its
# answer). Such an advertisement must not take be1's entry from be1 (7.2.5).
# all.forwarding stays 0: proxy ND needs only the interface's flag, and
# nothing gets forwarded.
nsx client sysctl -qw net.ipv6.conf.fc-cl0.forwarding=1 net.ipv6.conf.fc-cl0.proxy_ndp=1 || die "proxy_ndp"
nsx client ip -6 neigh add proxy "$SUBNET6:21" dev fc-cl0 || die "ip -6 neigh add proxy"
# Count the proxy's advertisements: NAs out of the client whose target is be1.
printf '%s\n' 'table ip6 fe2e6 {' '	counter proxied { }' '	chain out {' \
	'		type filter hook output priority 0; policy accept;' \
	'		icmpv6 type nd-neighbor-advert @th,64,128 0xfd000099000000000000000000000021 counter name "proxied"' \
	'	}' '}' | nsx client nft -f - || die "nft counter for the proxy's advertisements"
proxied() { nsx client nft list counter ip6 fe2e6 proxied | sed -n 's/.*packets \([0-9]*\) .*/\1/p'; }
LOG0=$(wc -l <"$FD_LOG")
for t in $(seq 1 200); do
	[ "$(proxied)" -ge 2 ] && break
	sleep 0.1
done
[ "$(proxied)" -ge 2 ] || die "the proxy answered $(proxied) solicitations for $SUBNET6:21 within 20 s (wanted 2)"
info "the client proxies ND for $SUBNET6:21: $(proxied) advertisements (Override clear) sent so far"

# 3. The node address: fulcrumd answers the client's solicitation for it and
# then its ICMPv6 echo (no ping in the lab: a raw socket; the kernel fills in
# the ICMPv6 checksum).
if out=$(nsx client timeout 20 python3 - "$NODE" <<'PY'
import os, socket, sys, time
dst = sys.argv[1]
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.settimeout(2)
ident = os.getpid() & 0xffff
for seq in range(1, 6):
    s.sendto(bytes([128, 0, 0, 0, ident >> 8, ident & 255, 0, seq]) + b"fulcrum", (dst, 0))
    end = time.monotonic() + 2
    while time.monotonic() < end:
        try:
            data, addr = s.recvfrom(2048)
        except socket.timeout:
            break
        if data[0] == 129 and data[4:8] == bytes([ident >> 8, ident & 255, 0, seq]) and data[8:] == b"fulcrum":
            print("echo reply from %s, seq %d" % (addr[0], seq))
            sys.exit(0)
sys.exit("no echo reply from %s" % dst)
PY
); then
	pass "ICMPv6 echo to the node address $NODE: $out"
else
	fail "ICMPv6 echo to the node address $NODE: $out"
fi

# 4. Real traffic, counted by the backends themselves as well. A packet that
# fulcrumd sent to the proxy instead of be1 would reach the client's kernel,
# which does not forward: it counts it as Ip6InAddrErrors.
misdirected() { nsx client awk '$1 == "Ip6InAddrErrors" {print $2}' /proc/net/snmp6; }
mis0=$(misdirected)
curl_round a "$N"
mis1=$(misdirected)
if [ "$mis1" -eq "$mis0" ]; then
	pass "no packet went to the proxy instead of be1 (client Ip6InAddrErrors stayed $mis1)"
else
	fail "$((mis1 - mis0)) packet(s) went to the proxy's MAC instead of a backend (client Ip6InAddrErrors $mis0 -> $mis1)"
fi
logs="" total=0 zero=""
for i in 1 2 3; do
	c=$(served a "be$i")
	logs="$logs${logs:+ }be$i=$c"
	total=$((total + c))
	[ "$c" -gt 0 ] || zero="$zero be$i"
done
if [ "$BODIES" = "$logs" ] && [ "$total" -eq "$N" ] && [ -z "$zero" ]; then
	pass "every backend served requests: access logs $logs (the bodies agree)"
else
	fail "backend access logs [$logs] (total $total, none:${zero:- -}), bodies [$BODIES]"
fi

# 5. The client's kernel resolved the VIP and the node address to fulcrumd's
# port MAC: fulcrumd's workers answered its solicitations (the backends hold
# the VIP on lo, which Linux does not advertise on fc-be0).
for a in $VIP $NODE; do
	line=$(nsx client ip -6 neigh show to "$a" dev fc-cl0)
	if echo "$line" | grep -qE "lladdr $PORT_MAC (REACHABLE|STALE|DELAY|PROBE)"; then
		pass "client neighbour entry for $a: $line(fulcrumd's port MAC)"
	else
		fail "client neighbour entry for $a: '${line:-none}', want lladdr $PORT_MAC"
	fi
done

# 6. fulcrumd's counters: the flows went to resolved backends, all of them;
# no packet met an unresolved neighbour once the first state resolved
# everything (no client packet was sent before it, so nn0 is expected 0 too);
# the entries were re-confirmed and none changed its MAC while the proxy
# answered for be1.
fd_stats >"$W/stats1"
grep -E '^(service|  backend|worker|  drops|  neighbour)' "$W/stats1" | sed 's/^/      /'
nn1=$(drops_of "$W/stats1" no_neighbour)
if out=$(awk -v n="$N" '
	/^service web6-dsr / { for (i = 1; i < NF; i++) if ($i == "new_flows") sf = $(i + 1) }
	/^  backend / { nb++; if ($5 != "resolved:") { printf "%s %s; ", $2, $5; bad = 1 }
		for (i = 1; i < NF; i++) if ($i == "new_flows") { bf += $(i + 1); if ($(i + 1) == 0) { printf "%s without flows; ", $2; bad = 1 } } }
	END { printf "service new_flows %d, backends %d (sum %d)", sf, nb, bf
		if (nb != 3 || sf < n || sf != bf) bad = 1
		exit bad }' "$W/stats1"); then
	pass "counters: $out, all resolved"
else
	fail "counters: $out"
fi
if [ "$nn0" -eq 0 ] && [ "$nn1" -eq 0 ]; then
	pass "no_neighbour drops: 0 at the first resolved state, 0 after $N requests"
else
	fail "no_neighbour drops: $nn0 at the first resolved state, $nn1 after $N requests"
fi
check_neighbours "after $(proxied) proxied advertisements for $SUBNET6:21" "$W/stats1"
changes=$(tail -n +"$((LOG0 + 1))" "$FD_LOG" | grep -c 'INFO  neighbour .* is at ')
lost=$(tail -n +"$((LOG0 + 1))" "$FD_LOG" | grep -c 'stopped answering')
if [ "$changes" -eq 0 ] && [ "$lost" -eq 0 ]; then
	pass "no neighbour changed its MAC or was lost since the proxy started (re-confirmed every second)"
else
	fail "$changes neighbour change(s), $lost loss(es) since the proxy started:"
	tail -n +"$((LOG0 + 1))" "$FD_LOG" | grep -E 'INFO  neighbour .* is at |stopped answering' | head -5 | sed 's/^/      /'
fi

# 7. A backend that really moves to a new MAC (a replaced NIC) says so with an
# unsolicited advertisement, Override set (ndisc_notify): fulcrumd must
# follow, and be2 keep getting its flows.
NEWMAC=02:99:00:00:00:22
nsx be2 sysctl -qw net.ipv6.conf.fc-be0.ndisc_notify=1 || die "ndisc_notify"
nsx be2 ip link set fc-be0 address "$NEWMAC" || die "cannot change be2's MAC"
for t in $(seq 1 100); do
	grep -q "INFO  neighbour $SUBNET6:22 is at $NEWMAC" "$FD_LOG" && break
	sleep 0.1
done
if grep -q "INFO  neighbour $SUBNET6:22 is at $NEWMAC" "$FD_LOG"; then
	pass "be2 moved to $NEWMAC: fulcrumd learned it from the advertisement"
else
	fail "be2 moved to $NEWMAC: fulcrumd did not learn it within 10 s"
fi
curl_round b 30
if [ "$(served b be2)" -gt 0 ]; then pass "be2 serves at its new MAC: $BODIES"; else fail "be2 served none of round b after its move: $BODIES"; fi
fd_stats >"$W/stats2"
check_neighbours "after be2's move" "$W/stats2"
nn2=$(drops_of "$W/stats2" no_neighbour)
[ "$nn2" -eq 0 ] || fail "no_neighbour drops after be2's move: $nn2"

fd_stop
e2e_finish
