#!/usr/bin/env bash
# The Fulcrum lab in network namespaces (docs/lab.md): create, destroy, inspect.
#
#   tools/lab.sh up       build the lab (tears down a previous one of the same prefix first)
#   tools/lab.sh down     kill every process in the lab's namespaces, delete them
#   tools/lab.sh status   list the lab's namespaces and the processes in them
#
# PREFIX (default fc) names everything: namespaces PREFIX-sw, PREFIX-client,
# PREFIX-lb, PREFIX-be1..3. The end-to-end tests use their own prefix so that
# they never touch a `make run` lab. Interface names and addresses are the same
# in every lab (they live in the lab's own namespaces), so conf/fulcrumd.conf
# fits all of them:
#
#   PREFIX-client  fc-cl0 10.99.0.10/24 ─┐
#   PREFIX-lb      fc-lb0 (no kernel IP) ─┼─ bridge fcbr0 in PREFIX-sw
#   PREFIX-beN     fc-be0 10.99.0.2N/24  ─┘  + 10.99.0.101/32 on lo (dsr VIP)
#
# `down` finds the lab by its namespace names and the processes by their
# namespace (`ip netns pids`), not by a pid file, so it also cleans up after a
# crashed or killed run. Needs root, iproute2, ethtool, python3.
set -euo pipefail

PREFIX=${PREFIX:-fc}
HERE=$(cd "$(dirname "$0")" && pwd)
SUBNET=10.99.0
BACKENDS=(1 2 3)
STATE=${LAB_STATE:-/run/fulcrum-lab/$PREFIX}

die() { echo "lab.sh: $*" >&2; exit 1; }

case $PREFIX in
*[!a-z0-9]* | "") die "PREFIX must be lower-case letters and digits (got '$PREFIX')" ;;
esac
[ ${#PREFIX} -le 12 ] || die "PREFIX longer than 12 characters"

lab_namespaces() {
	ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${PREFIX}-(sw|client|lb|be[0-9]+)$" || true
}

ns_pids() { ip netns pids "$1" 2>/dev/null || true; }

down() {
	local nss ns p pids t
	nss=$(lab_namespaces)
	[ -n "$nss" ] || { rm -rf "$STATE"; return 0; }
	# TERM first (fulcrumd stops its ports and the EAL cleanly on it), KILL
	# whatever is left after 5 s.
	for ns in $nss; do
		for p in $(ns_pids "$ns"); do kill -TERM "$p" 2>/dev/null || true; done
	done
	for t in $(seq 1 50); do
		pids=""
		for ns in $nss; do pids="$pids$(ns_pids "$ns")"; done
		[ -z "$pids" ] && break
		sleep 0.1
	done
	for ns in $nss; do
		for p in $(ns_pids "$ns"); do kill -KILL "$p" 2>/dev/null || true; done
	done
	for ns in $nss; do
		# A process killed a moment ago may still hold the namespace; retry.
		for t in $(seq 1 20); do
			ip netns del "$ns" 2>/dev/null && break
			sleep 0.1
		done
	done
	rm -rf "$STATE"
	echo "lab.sh: ${PREFIX} lab down ($(echo $nss | wc -w) namespaces removed)"
}

# veth NS IFNAME PEER: a veth pair from NS to the switch namespace, peer on the bridge.
veth() {
	ip link add "$2" netns "$1" type veth peer name "$3" netns "$PREFIX-sw"
	ip -n "$PREFIX-sw" link set "$3" master fcbr0 up
	ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
	ip -n "$1" link set lo up
	ip -n "$1" link set "$2" up
	# LAB.md pitfall: with TX checksum offload on, the kernel leaves checksums
	# for "hardware" that af_packet never fills in, and receivers drop them.
	ip netns exec "$1" ethtool -K "$2" tx off >/dev/null
}

wait_listening() { # NS: until the servers listen on tcp 80, 8080 and udp 5353
	local t
	for t in $(seq 1 100); do
		if [ "$(ip netns exec "$1" ss -Hltn '( sport = :80 or sport = :8080 )' | wc -l)" -ge 2 ] &&
			[ "$(ip netns exec "$1" ss -Hlun '( sport = :5353 )' | wc -l)" -ge 1 ]; then
			return 0
		fi
		sleep 0.1
	done
	die "servers in $1 did not start; see $STATE/$1.log"
}

up() {
	local i ns
	[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
	for c in ip ethtool python3 ss; do command -v "$c" >/dev/null || die "$c not found (make deps)"; done
	down >/dev/null
	mkdir -p "$STATE"
	trap 'echo "lab.sh: up failed, tearing down" >&2; down >/dev/null' ERR

	ip netns add "$PREFIX-sw"
	ip -n "$PREFIX-sw" link set lo up
	ip -n "$PREFIX-sw" link add fcbr0 type bridge stp_state 0 forward_delay 0
	ip -n "$PREFIX-sw" link set fcbr0 up

	ip netns add "$PREFIX-client"
	veth "$PREFIX-client" fc-cl0 sw-cl
	ip -n "$PREFIX-client" addr add "$SUBNET.10/24" dev fc-cl0

	# The node: DPDK drives fc-lb0 through af_packet. No kernel address (the
	# kernel would answer ARP and send RSTs for fulcrumd's address), promiscuous
	# (fulcrumd answers for the VIPs' and its own MAC-level traffic), and no
	# offloads in either direction.
	ip netns add "$PREFIX-lb"
	veth "$PREFIX-lb" fc-lb0 sw-lb
	ip netns exec "$PREFIX-lb" ethtool -K fc-lb0 tx off rx off >/dev/null
	ip -n "$PREFIX-lb" link set fc-lb0 promisc on

	for i in "${BACKENDS[@]}"; do
		ns=$PREFIX-be$i
		ip netns add "$ns"
		veth "$ns" fc-be0 "sw-b$i"
		ip -n "$ns" addr add "$SUBNET.2$i/24" dev fc-be0
		# dsr: the VIP on lo, never answered for in ARP (arp_ignore=1) nor used
		# as an ARP source (arp_announce=2), so only fulcrumd owns it on the wire.
		ip -n "$ns" addr add "$SUBNET.101/32" dev lo
		ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
		ip netns exec "$ns" setsid python3 "$HERE/lab_servers.py" "be$i" --http 80 --http 8080 --udp 5353 \
			</dev/null >"$STATE/$ns.log" 2>&1 &
	done
	for i in "${BACKENDS[@]}"; do wait_listening "$PREFIX-be$i"; done
	trap - ERR
	echo "lab.sh: ${PREFIX} lab up: client $SUBNET.10 in $PREFIX-client, node port fc-lb0 in $PREFIX-lb," \
		"backends be1..be${#BACKENDS[@]} $SUBNET.21-2${#BACKENDS[@]} (http :80 :8080, udp :5353)"
}

status() {
	local ns p
	for ns in $(lab_namespaces); do
		echo "$ns:"
		for p in $(ns_pids "$ns"); do echo "  $(ps -o pid=,args= -p "$p" 2>/dev/null || echo "$p")"; done
	done
}

case ${1:-} in
up) up ;;
down) down ;;
status) status ;;
*) echo "usage: [PREFIX=fc] $0 up|down|status" >&2; exit 2 ;;
esac
