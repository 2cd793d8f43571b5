#!/usr/bin/env bash
# End to end (issue 5 §4, §7): faults on a 3-node cluster of real fulcrumd
# processes on loopback (the shipped conf/cluster/node*.conf moved to this
# script's ports and directory):
#   1. a follower cut off with nftables (its Raft port dropped in both
#      directions) keeps timing out, and rejoins without deposing the leader:
#      leader and term are the same after healing (pre-vote + check-quorum);
#      it catches up with a write made while it was away;
#   2. a lease expires when its keepalives stop (ttl 3 s, kept alive past
#      its TTL, then left alone: the backend goes, on every node);
#   3. a lease does NOT expire when the leader changes: kept alive every 0.5 s
#      through the followers while the leader is killed with -9; after the new
#      leader is elected and more than a TTL has passed, the backend and its
#      lease are still there;
#   4. the killed node restarts; all three publish one forwarding digest and
#      one state digest at one revision.
# Part 1 needs root, nft and ss; without them it is skipped (said so) and the rest
# runs. The nft rules live in a table of their own, deleted on exit.
# Usage: tests/e2e/cluster_faults.sh BINDIR. Exit 0 = pass, 77 = skipped, else fail.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
. tests/e2e/cluster_lib.bash
cl_init faults 2 "${1:-}"
cl_need curl
[ -n "$PY" ] || skip "python3 not installed (make deps installs it)"

# Known issue (docs/cluster.md): a follower that forwarded a request leaks the
# forwarding connection at exit; the clean-stop check tolerates that leak alone.
TOKEN=fulcrum-lab-admin-token
A=(-H "Authorization: Bearer $TOKEN")
NFT_TABLE="fulcrum_e2e_faults_$$"
NFT_MADE=

cl_extra_cleanup() {
	[ -n "$NFT_MADE" ] && nft delete table inet "$NFT_TABLE" 2>/dev/null
	[ -n "${KAPID:-}" ] && kill "$KAPID" 2>/dev/null
	return 0
}

# Election timeouts of 500-1000 ms instead of 150-300 ms: a leader change on a
# loaded 2-core CI machine (ASan, another test running) would otherwise
# mimic the deposing that part 1 checks for. The property does not depend on
# the scale.
for n in 1 2 3; do cl_conf_shipped "$n" 's/election_min_ms = [0-9]*/election_min_ms = 500/'; done
cl_check_conf 1
for n in 1 2 3; do start "$n"; done

L=$(wait_leader 45 1 2 3) || die "no leader agreed on by all 3 nodes within 45 s"
read -r REV DIG <<<"$(wait_step 30 1 1 2 3)"
[ -n "${REV:-}" ] || die "nodes did not reach one revision and digest within 30 s"
F=$((L % 3 + 1))
F2=$((F % 3 + 1))
[ "$F2" != "$L" ] || F2=$((F2 % 3 + 1))
pass "cluster up: leader $L, followers $F and $F2, revision $REV, digest $DIG"

# rev N: node N's revision from its status file.
rev() { st "$1" revision; }

all_connected() { jok "all(m['connected'] for m in d['members'])" "$(api "$L" GET /v1/status)"; }
lost_leader() { [ "$(st "$1" leader)" = 0 ]; }

# ---- 1. partition a follower with nftables, heal, no deposing
if [ "$(id -u)" != 0 ] || ! command -v nft >/dev/null || ! command -v ss >/dev/null; then
	echo "SKIP: partition check: needs root, nft and ss"
elif ! nft add table inet "$NFT_TABLE" 2>"$W/nft.err"; then
	echo "SKIP: partition check: nft cannot add a table here: $(cat "$W/nft.err")"
else
	NFT_MADE=1
	P=$(raft_port "$F")
	TERM0=$(st "$L" term)
	FTERM0=$(st "$F" term)
	# One TCP connection per pair of nodes carries both directions
	# (docs/raft-transport.md), dialed by either side. Those the peers dialed
	# to F use F's Raft port P; those F dialed use an ephemeral port of F's,
	# found with ss. New connections are stopped by dropping SYNs to the
	# peers' Raft ports: the leader and the other follower stay on the
	# connection they already have (checked connected first).
	PORTS="$(raft_port "$L"), $(raft_port "$F2")"
	wait_until 20 all_connected || fail "leader $L does not show every member connected before the cut"
	EPH=$(ss -Htnp state established "( dport = :$(raft_port "$L") or dport = :$(raft_port "$F2") )" 2>/dev/null |
		grep "pid=${PID[$F]}," | awk '{print $3}' | sed 's/.*://' | sort -u | paste -sd, -)
	EPHR=
	[ -n "$EPH" ] && EPHR="oifname \"lo\" tcp sport { $EPH } drop
		oifname \"lo\" tcp dport { $EPH } drop"
	nft -f - <<EOF || die "nft rules not accepted"
table inet $NFT_TABLE {
	chain out { type filter hook output priority 0; policy accept;
		oifname "lo" tcp dport $P drop
		oifname "lo" tcp sport $P drop
		oifname "lo" tcp dport { $PORTS } tcp flags & (syn | ack) == syn drop
		$EPHR
	}
	chain in { type filter hook input priority 0; policy accept;
		iifname "lo" tcp dport $P drop
		iifname "lo" tcp sport $P drop
	}
}
EOF
	info "cut: Raft port $P, new dials to $PORTS, and node $F's own connections from port(s) ${EPH:-none}"
	if wait_until 20 lost_leader "$F"; then
		pass "follower $F cut off (Raft port $P dropped both ways): it lost the leader"
	else
		fail "follower $F still sees a leader 20 s after the cut (status: $(tr '\n' ' ' <"$W/s$F"))"
	fi
	# A write while F is away: the majority commits it.
	req "$L" POST /v1/services "${A[@]}" -d '{"name":"during-cut","vip":"10.99.0.140","port":80}'
	[ "$CODE" = 201 ] && pass "the majority takes a write while $F is cut off (revision $IDX)" ||
		fail "write during the cut: $CODE $BODY"
	CUTREV=${IDX:-0}
	# Let F run through several election timeouts (500-1000 ms each) while
	# cut off: without pre-vote its term would climb with each.
	: >"$W/roles"
	for _ in $(seq 1 30); do
		st "$F" role >>"$W/roles"
		sleep 0.1
	done
	alive "$F" || fail "node $F died while cut off"
	grep -q 'candidate' "$W/roles" && pass "cut-off follower $F runs for election: $(sort "$W/roles" | uniq -c | tr -s ' \n' ' ')" ||
		fail "cut-off follower $F never became a (pre)candidate in 3 s: $(sort "$W/roles" | uniq -c | tr -s ' \n' ' ')"
	FTERM1=$(st "$F" term)
	[ "$FTERM1" = "$FTERM0" ] && pass "cut-off follower $F did not raise its term ($FTERM1): pre-vote" ||
		fail "cut-off follower $F raised its term from $FTERM0 to $FTERM1"
	[ "$(rev "$F")" -lt "$CUTREV" ] 2>/dev/null || fail "node $F got revision $CUTREV through the cut (rules not effective?)"
	nft delete table inet "$NFT_TABLE" && NFT_MADE=
	read -r r d <<<"$(wait_step 30 "$CUTREV" 1 2 3)"
	[ -n "${r:-}" ] && pass "after healing, $F caught up: all 3 at revision $r, digest $d" ||
		fail "node $F did not catch up to revision $CUTREV after healing"
	L2=$(agreed_leader 1 2 3)
	if [ "$L2" = "$L" ] && [ "$(st "$L" term)" = "$TERM0" ] && [ "$(st "$F" term)" = "$TERM0" ]; then
		pass "the rejoined node did not depose the leader: node $L still leads in term $TERM0"
	else
		fail "leader $L term $TERM0 before the cut; after healing leader '$L2', terms $(st 1 term)/$(st 2 term)/$(st 3 term)"
	fi
fi

# ---- 2. a lease expires when its keepalives stop
req "$F" POST /v1/services "${A[@]}" -d '{"name":"lease","vip":"10.99.0.141","port":80}'
[ "$CODE" = 201 ] || die "create service lease: $CODE $BODY"
req "$F" POST /v1/services/lease/backends "${A[@]}" -d '{"address":"10.99.6.1","ttl_ms":3000}'
expect "register a backend with ttl 3 s through follower $F" 201 "d['lease'] > 0"
E_ID=$(jget "d['id']")
E_LEASE=$(jget "d['lease']")
# Kept alive for twice its TTL: it must stay.
ok=1
for _ in $(seq 1 12); do
	req "$F2" PUT "/v1/leases/$E_LEASE/keepalive" "${A[@]}"
	[ "$CODE" = 200 ] || { ok=0; info "keepalive: $CODE $BODY"; }
	sleep 0.5
done
req "$L" GET "/v1/services/lease/backends/$E_ID" "${A[@]}"
[ "$ok" = 1 ] && [ "$CODE" = 200 ] && pass "kept alive every 0.5 s for 6 s (TTL 3 s), the backend stays" ||
	fail "the kept-alive backend: keepalives ok=$ok, GET $CODE $BODY"
gone() {
	local n
	for n in 1 2 3; do
		req "$n" GET "/v1/services/lease/backends/$E_ID?stale=1" "${A[@]}"
		[ "$CODE" = 404 ] || return 1
	done
}
if wait_until 30 gone; then
	pass "keepalives stopped: the backend disappeared from every node"
	req "$L" PUT "/v1/leases/$E_LEASE/keepalive" "${A[@]}"
	expect "keepalive of the expired lease" 404 "d['error']['code'] == 'not_found'"
else
	fail "the backend of lease $E_LEASE was still there 30 s after its keepalives stopped"
fi

# ---- 3. a lease survives a leader change while kept alive
req "$F" POST /v1/services/lease/backends "${A[@]}" -d '{"address":"10.99.6.2","ttl_ms":3000}'
expect "register a backend with ttl 3 s through follower $F" 201 "d['lease'] > 0"
K_ID=$(jget "d['id']")
K_LEASE=$(jget "d['lease']")
# Keepalives every 0.5 s, alternating between the two followers (the nodes
# that survive); each answer code goes to $W/ka.
(
	i=0
	while :; do
		n=$F
		[ $((i % 2)) = 1 ] && n=$F2
		c=$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' -X PUT "${A[@]}" \
			"http://127.0.0.1:$(api_port "$n")/v1/leases/$K_LEASE/keepalive")
		echo "$c" >>"$W/ka"
		i=$((i + 1))
		sleep 0.5
	done
) &
KAPID=$!
sleep 1.5
OLDTERM=$(st "$L" term)
kill9 "$L"
NL=$(wait_new_leader 30 "$L" "$OLDTERM" "$F" "$F2") || die "no new leader among $F and $F2 within 30 s of killing $L"
pass "kill -9 of leader $L: node $NL leads in term $(st "$NL" term)"
KA0=$(wc -l <"$W/ka")
# More than a TTL after the new leader, with keepalives answered by it.
sleep 4.5
KA200=$(tail -n +"$((KA0 + 1))" "$W/ka" | grep -c '^200$')
kill "$KAPID" 2>/dev/null
wait "$KAPID" 2>/dev/null
KAPID=
[ "$KA200" -ge 2 ] && pass "keepalives through the survivors succeed under the new leader ($KA200 answered 200)" ||
	fail "keepalives did not succeed under the new leader: $(tail -n +"$((KA0 + 1))" "$W/ka" | tr '\n' ' ')"
ok=1
for n in "$F" "$F2"; do
	req "$n" GET "/v1/services/lease/backends/$K_ID?stale=1" "${A[@]}"
	[ "$CODE" = 200 ] && jok "d['lease'] == $K_LEASE" || { ok=0; info "node $n: $CODE $BODY"; }
done
req "$NL" GET "/v1/leases/$K_LEASE" "${A[@]}"
[ "$ok" = 1 ] && [ "$CODE" = 200 ] &&
	pass "the kept-alive backend and its lease survived the leader change (> TTL after the new leader)" ||
	fail "the kept-alive lease $K_LEASE did not survive the leader change: lease GET $CODE $BODY"

# Revoke it now, so that no expiry lands while the nodes are compared.
req "$NL" DELETE "/v1/leases/$K_LEASE" "${A[@]}"
expect "revoke the kept-alive lease" 200 "d['revoked'] is True and d['backends_removed'] == 1"

# ---- 4. the killed node comes back: one state everywhere
start "$L"
NOW=$(rev "$NL")
read -r r d <<<"$(wait_step 45 "${NOW:-1}" 1 2 3)"
if [ -n "${r:-}" ]; then
	pass "node $L restarted and caught up: all 3 at revision $r, forwarding digest $d"
else
	fail "node $L did not catch up after its restart"
fi
# same_status: /v1/status of the 3 nodes agree on revision, forwarding digest
# and state digest (sets SD).
same_status() {
	local n
	SD=
	for n in 1 2 3; do
		req "$n" GET /v1/status "${A[@]}"
		x=$(jget "'%s %s %s' % (d['revision'], d['forwarding_digest'], d['state_digest'])")
		[ -n "$x" ] || return 1
		[ -z "$SD" ] && SD=$x
		[ "$x" = "$SD" ] || return 1
	done
}
if wait_until 30 same_status; then
	pass "/v1/status on every node: revision, forwarding digest and state digest equal ($SD)"
else
	fail "/v1/status differs between nodes for 30 s (last: $SD, then ${x:-?})"
fi
cl_stop_all
cl_finish
