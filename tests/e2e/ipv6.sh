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
#     advertisement, Override set) is followed;
#   - nat over IPv6 (dataplane/dpdk_dp.c: a v6 SNAT pool per worker, reply
#     steering for IPv6): a second VIP whose backends listen on their own
#     addresses; 60 curl -6 connections all succeed, every backend serves
#     some, and the backends see the node's IPv6 address as the client.
# Two workers on net_af_packet qpairs=2 (the kernel's fanout hash spreads
# flows over the two RX queues), so that about half the nat replies reach the
# worker that does not own their SNAT port and must be handed to the owner;
# the node has no IPv4 address, so every handoff counted is an IPv6 one
# (tests/e2e/multiworker.sh, the IPv4 counterpart, has no IPv6 lab).
# Usage: tests/e2e/ipv6.sh BINDIR, from the repository root. Exit 0 = pass,
# 77 = skipped (not root, no namespaces, no IPv6 in the kernel), else fail.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
. tests/e2e/e2e_lib.bash
[ -e /proc/net/if_inet6 ] || skip "no IPv6 in this kernel"
e2e_init fe2e6 "${1:-}"

VIP=$LAB6_VIP NODE=$SUBNET6:2 CLIENT=$SUBNET6:10 N=60
NATVIP=$SUBNET6:102 NATPORT=8080
lab6_up "$W" || die "IPv6 addresses or servers in the lab did not come up"
# The nat service's backends: nat sends to each backend's own address (the
# dsr servers of lab6_up listen on the VIP only), port 8080; lab_servers.py
# holds 0.0.0.0:8080, an IPv4 socket, so the IPv6 one can bind beside it.
for i in 1 2 3; do
	ip netns exec "$PREFIX-be$i" setsid python3 -m http.server "$NATPORT" --bind "$SUBNET6:2$i" \
		--directory "$W/be$i" </dev/null >"$W/be$i-nat-http.log" 2>&1 &
done
for i in 1 2 3; do
	for t in $(seq 1 100); do
		[ -n "$(nsx "be$i" ss -Hltn "src [$SUBNET6:2$i]:$NATPORT")" ] && break
		[ "$t" -eq 100 ] && { cat "$W/be$i-nat-http.log"; die "be$i: no HTTP server on [$SUBNET6:2$i]:$NATPORT"; }
		sleep 0.1
	done
done

# arp_timeout = 2: entries are re-confirmed (a solicitation each) about once a
# second, so the few seconds of this test see several rounds. Two workers on
# two queue pairs with floating lcores (LAB.md: three threads on two CPUs).
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
	lcores = "0@(0-1),1@(0-1),2@(0-1)";
	no_huge = true;
	memory_mb = 256;
	in_memory = true;
	eal_args = [ "--no-pci" ];
	port = { devargs = "net_af_packet0,iface=fc-lb0,qpairs=2"; };
	workers = 2;
	idle = "adaptive";
	idle_polls = 300;
	idle_sleep_us = 20;
	arp_retry_ms = 200;
	arp_timeout = 2;
};
services = (
	{ name = "web6-dsr"; vip = "$VIP"; port = 80; proto = "tcp"; mode = "dsr"; announce = true;
	  backends = ( { address = "$SUBNET6:21"; }, { address = "$SUBNET6:22"; }, { address = "$SUBNET6:23"; } ); },
	{ name = "web6-nat"; vip = "$NATVIP"; port = 80; proto = "tcp"; mode = "nat"; announce = true;
	  backends = ( { address = "$SUBNET6:21"; port = $NATPORT; }, { address = "$SUBNET6:22"; port = $NATPORT; },
		       { address = "$SUBNET6:23"; port = $NATPORT; } ); }
);
EOF
# fd_start waits (30 s at most) for a state with every backend and the
# gateway resolved, and fails the test without one.
fd_start
grep -q '2 worker(s)' "$FD_LOG" || die "fulcrumd did not report 2 workers"
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
# client_neigh ADDR: the client's neighbour entry for ADDR holds fulcrumd's port MAC.
client_neigh() {
	local line
	line=$(nsx client ip -6 neigh show to "$1" dev fc-cl0)
	if echo "$line" | grep -qE "lladdr $PORT_MAC (REACHABLE|STALE|DELAY|PROBE)"; then
		pass "client neighbour entry for $1: $line(fulcrumd's port MAC)"
	else
		fail "client neighbour entry for $1: '${line:-none}', want lladdr $PORT_MAC"
	fi
}
for a in $VIP $NODE; do
	client_neigh "$a"
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
	/^service / { dsr = $2 == "web6-dsr" }
	/^service web6-dsr / { for (i = 1; i < NF; i++) if ($i == "new_flows") sf = $(i + 1) }
	/^  backend / && dsr { nb++; if ($5 != "resolved:") { printf "%s %s; ", $2, $5; bad = 1 }
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

# 7. nat over IPv6 with two workers: N connections (10 at a time) to the nat
# VIP. Bounded: a connection whose SYN-ACK reaches the worker that does not
# own its SNAT port, and is not handed over, never completes (the
# retransmitted SYN keeps its port, so the SYN-ACK is hashed the same way
# again) and gives up after 3 s; without an IPv6 SNAT pool every new flow is
# dropped (snat_exhausted).
nsx client curl -6 -s -Z --parallel-max 10 --connect-timeout 3 --max-time 10 -H 'Connection: close' \
	"http://[$NATVIP]/id?n-[1-$N]" 2>"$W/curl-n.err" | awk '{print NR, $1}' >"$W/curl-n"
ok=$(grep -c ' be[0-9]$' "$W/curl-n")
if [ "$ok" -eq "$N" ]; then pass "curl -6 nat [$NATVIP]:80: $ok/$N connections answered"; else fail "curl -6 nat [$NATVIP]:80: $ok/$N connections answered"; fi
BODIES=$(awk '{print $2}' "$W/curl-n" | sort | uniq -c | awk '{printf "%s%s=%d", sep, $2, $1; sep = " "}')
# Each backend's own access log: the requests it served and who sent them
# (SNAT: the node's address, never the client's).
logs="" total=0 zero="" clients=""
for i in 1 2 3; do
	c=$(grep -c '"GET /id?n-' "$W/be$i-nat-http.log")
	logs="$logs${logs:+ }be$i=$c"
	total=$((total + c))
	[ "$c" -gt 0 ] || zero="$zero be$i"
	clients="$clients $(awk '/"GET \/id\?n-/ {print $1}' "$W/be$i-nat-http.log")"
done
clients=$(printf '%s\n' $clients | awk NF | sort | uniq -c | awk '{printf "%s%s x%d", sep, $2, $1; sep = ", "}')
if [ "$BODIES" = "$logs" ] && [ "$total" -eq "$N" ] && [ -z "$zero" ]; then
	pass "nat: every backend served requests: access logs $logs (the bodies agree)"
else
	fail "nat: backend access logs [$logs] (total $total, none:${zero:- -}), bodies [$BODIES]"
fi
if [ "$clients" = "$NODE x$total" ] && [ "$total" -gt 0 ]; then
	pass "nat: the backends saw only the node's address as the client: $clients"
else
	fail "nat: clients in the backends' access logs: ${clients:-none} (want $NODE only)"
fi
# The workers' counters: both queues delivered traffic, replies were handed
# to their owner, and once traffic stopped every handed-off frame was taken
# by its owner or dropped (ring full). The node has no IPv4 address: no v4
# SNAT, no v4 steering, so these handoffs are IPv6 nat replies.
fd_stats >"$W/stats-n"
grep -E '^(service web6-nat|worker|  drops)' "$W/stats-n" | sed 's/^/      /'
if out=$(awk -v n="$N" "$STATS_AWK"'
	/^service web6-nat / { sf = field("new_flows"); rp = field("reply_pkts") }
	/^worker [0-9]+: / { handoff_line() }
	END {
		printf "nat new_flows %d, reply_pkts %d; ", sf, rp
		handoff_report()
		if (nw != 2 || sf < n || rp == 0) exit 1
		for (w in q) if (q[w] == 0) { printf "; worker %s received nothing", w; exit 1 }
		if (!handoff_ok()) exit 1
	}' "$W/stats-n"); then
	pass "nat over IPv6 on 2 workers, replies steered: $out"
else
	fail "nat counters: $out"
fi
info "nat: dropped as snat_exhausted $(drops_of "$W/stats-n" snat_exhausted), no_reverse_flow $(drops_of "$W/stats-n" no_reverse_flow)"

# 8. A backend that really moves to a new MAC (a replaced NIC) says so with an
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

# 9. MLD (issue 3). With a switch that snoops MLD, a solicitation reaches
# fulcrumd's port only for the groups fulcrumd reported: the solicited-node
# groups of its address, of every announced VIP and of the link-local
# address its reports come from (controlplane/main.c mld_sync,
# controlplane/neigh.c neigh_mld_*). The lab's bridge is such a switch
# (multicast snooping is on by default; without a querier it still floods,
# but it records who reported what): its table must name fulcrumd's port
# for those groups, so the kernel accepted the reports (it checks the Router
# Alert option, the checksum and the records). Then a VIP added by SIGHUP:
# its group must be reported at once and again a second later (robustness
# 2), in well-formed MLDv2 reports seen on the wire at the switch's end of
# fulcrumd's veth (a python AF_PACKET reader: tcpdump is not among the
# project's packages), and its removal reported as a leave.
LL=$(python3 -c '
import ipaddress, sys
m = bytes.fromhex(sys.argv[1].replace(":", ""))
b = bytes([0xfe, 0x80] + [0] * 6 + [m[0] ^ 2, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]])
print(ipaddress.IPv6Address(b))' "$PORT_MAC")
# snm ADDR: the solicited-node group of ADDR (ff02::1:ff00:0/104 + its low 24 bits).
snm() { python3 -c 'import ipaddress, sys; a = ipaddress.IPv6Address(sys.argv[1]).packed; print(ipaddress.IPv6Address(bytes([0xff, 2] + [0] * 9 + [1, 0xff]) + a[13:]))' "$1"; }
# mdb_has GROUP: the bridge recorded fulcrumd's port (sw-lb) as a listener of GROUP.
mdb_has() { nsx sw bridge mdb show dev fcbr0 | grep -qE "port sw-lb grp $1( |$)"; }
missing=""
for a in "$VIP" "$NODE" "$LL"; do
	g=$(snm "$a")
	mdb_has "$g" || missing="$missing $g ($a)"
done
if [ -z "$missing" ]; then
	pass "MLD: the switch lists fulcrumd's port for the solicited-node groups of the VIP, $NODE and $LL"
else
	fail "MLD: the switch does not list fulcrumd's port for:$missing"
	nsx sw bridge mdb show dev fcbr0 | sed 's/^/      /'
fi
grep -q "MLD: listening on .* reports from $LL to ff02::16" "$FD_LOG" ||
	fail "MLD: fulcrumd did not log its groups and the link-local source $LL"

# mld_capture GROUP TYPE COUNT: read MLDv2 reports on sw-lb (15 s at most)
# until COUNT of them carry a record of TYPE (4 = join, TO_EX; 3 = leave,
# TO_IN) for GROUP; every MLD frame seen must be a well-formed report from
# fulcrumd: Ethernet 33:33:00:00:00:16 from the port MAC, IPv6 from $LL to
# ff02::16 with hop limit 1, a Hop-by-Hop header holding Router Alert 0,
# ICMPv6 143 with a right checksum, records without sources. Prints
# "ready" on fd 3 once it listens.
mld_capture() {
	nsx sw timeout 20 python3 - "$PORT_MAC" "$LL" "$@" 3>"$W/mld-ready" <<'PY'
import ipaddress, os, socket, struct, sys, time
mac, ll, group, rtype, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
mac = bytes.fromhex(mac.replace(":", ""))
ll, group = ipaddress.IPv6Address(ll).packed, ipaddress.IPv6Address(group).packed
dst = ipaddress.IPv6Address("ff02::16").packed
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind(("sw-lb", 0))
s.settimeout(0.5)
os.write(3, b"ready\n")
def csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16:
        t = (t & 0xffff) + (t >> 16)
    return t
seen, bad, end = [], [], time.monotonic() + 15
while len(seen) < count and time.monotonic() < end:
    try:
        f, src = s.recvfrom(2048)
    except socket.timeout:
        continue
    if src[2] == socket.PACKET_OUTGOING:
        continue  # the bridge's frames towards fulcrumd; only what fulcrumd sent counts
    if len(f) < 62 or f[12:14] != b"\x86\xdd" or f[20] != 0 or f[14 + 24:14 + 40] != dst:
        continue  # not IPv6 with a Hop-by-Hop header to ff02::16
    ip, why = f[14:], []
    hbh_len = (ip[41] + 1) * 8
    icmp = ip[40 + hbh_len:40 + struct.unpack("!H", ip[4:6])[0]]
    if ip[40] != 58 or len(icmp) < 8 or icmp[0] != 143:
        continue  # not MLDv2 (a kernel's MLDv1 or v2 of another node would not come from fulcrumd's port)
    if f[:6] != b"\x33\x33\x00\x00\x00\x16": why.append("Ethernet destination")
    if f[6:12] != mac: why.append("source MAC")
    if ip[7] != 1: why.append("hop limit %d" % ip[7])
    if ip[8:24] != ll: why.append("source %s" % ipaddress.IPv6Address(ip[8:24]))
    opts, o, ra = ip[42:40 + hbh_len], 0, False
    while o < len(opts):
        if opts[o] == 0:
            o += 1
            continue
        if opts[o] == 5 and opts[o + 1] == 2 and opts[o + 2:o + 4] == b"\0\0":
            ra = True
        o += 2 + opts[o + 1]
    if not ra: why.append("no Router Alert")
    pseudo = ip[8:40] + struct.pack("!IxxxB", len(icmp), 58)
    if csum(pseudo + icmp) != 0xffff: why.append("checksum")
    n, recs, off, hit = struct.unpack("!H", icmp[6:8])[0], [], 8, False
    for i in range(n):
        t, aux, ns = icmp[off], icmp[off + 1], struct.unpack("!H", icmp[off + 2:off + 4])[0]
        g = icmp[off + 4:off + 20]
        if aux or ns: why.append("sources or aux data")
        recs.append("%d:%s" % (t, ipaddress.IPv6Address(g)))
        hit |= t == rtype and g == group
        off += 20 + 16 * ns + 4 * aux
    if off != len(icmp): why.append("record count vs length")
    line = "report at %.2f s: %s" % (time.monotonic(), " ".join(recs))
    if why:
        bad.append(line + " BAD: " + ", ".join(why))
    elif hit:
        seen.append(line)
for l in seen + bad:
    print(l)
sys.exit(0 if len(seen) >= count and not bad else 1)
PY
}
# mld_reload CONF WHAT TYPE: capture while fulcrumd reloads CONF; passes
# when two reports of TYPE for the group of $MLDVIP are seen.
MLDVIP=$SUBNET6:103
mld_reload() {
	local conf=$1 what=$2 type=$3 n t out rc
	rm -f "$W/mld-ready"
	mld_capture "$(snm "$MLDVIP")" "$type" 2 >"$W/mld-out" 2>&1 &
	local cap=$!
	for t in $(seq 1 50); do
		[ -s "$W/mld-ready" ] && break
		sleep 0.1
	done
	[ -s "$W/mld-ready" ] || { kill "$cap" 2>/dev/null; cat "$W/mld-out"; die "MLD capture did not start"; }
	n=$(grep -c 'published revision [0-9]* (reload)' "$FD_LOG")
	cp "$conf" "$FD_CONF"
	kill -HUP "$FD_PID"
	for t in $(seq 1 100); do
		[ "$(grep -c 'published revision [0-9]* (reload)' "$FD_LOG")" -gt "$n" ] && break
		sleep 0.1
	done
	wait "$cap"
	rc=$?
	out=$(sed 's/^/      /' "$W/mld-out")
	if [ "$rc" -eq 0 ]; then
		pass "MLD: $what of $MLDVIP's group reported twice, well-formed:"
	else
		fail "MLD: $what of $MLDVIP's group: not two well-formed reports (exit $rc):"
	fi
	echo "$out"
}
cp "$FD_CONF" "$W/conf-base"
sed "s|^services = ($|services = (\n\t{ name = \"mld6\"; vip = \"$MLDVIP\"; port = 80; proto = \"tcp\"; mode = \"dsr\"; announce = true;\n\t  backends = ( { address = \"$SUBNET6:21\"; } ); },|" "$W/conf-base" >"$W/conf-mld"
grep -q "$MLDVIP" "$W/conf-mld" || die "could not add the MLD test service to the config"
mld_reload "$W/conf-mld" "a VIP added by SIGHUP: join" 4
for t in $(seq 1 30); do
	mdb_has "$(snm "$MLDVIP")" && break
	sleep 0.1
done
if mdb_has "$(snm "$MLDVIP")"; then pass "MLD: the switch lists fulcrumd's port for $MLDVIP's group"; else fail "MLD: the switch did not learn $MLDVIP's group from fulcrumd"; fi
mld_reload "$W/conf-base" "the VIP removed again: leave" 3

# The link-local address is a real neighbour: the control thread answers
# solicitations for it (the workers know only address6 and the VIPs). The
# client's kernel solicits it before sending a datagram to it.
nsx client python3 -c 'import socket, sys; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendto(b"x", (sys.argv[1] + "%fc-cl0", 9))' "$LL" ||
	fail "could not send to $LL from the client"
for t in $(seq 1 50); do
	nsx client ip -6 neigh show to "$LL" dev fc-cl0 | grep -q "lladdr $PORT_MAC" && break
	sleep 0.1
done
client_neigh "$LL" # fulcrumd's link-local address

fd_stop
e2e_finish
