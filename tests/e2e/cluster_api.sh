#!/usr/bin/env bash
# End to end (issue 5 §3, §5, §7): the control API and fulcrumctl against a
# 3-node cluster of real fulcrumd processes on loopback (the shipped
# conf/cluster/node*.conf moved to this script's ports and directory):
#   - every endpoint of docs/api.md with its status, its JSON fields and the
#     X-Fulcrum-Index header;
#   - auth and scope (401 / 403, and the revision does not move);
#   - bad JSON, non-object, unknown field, wrong type: 400; a body over
#     64 KiB: 413;
#   - writes sent to a follower are forwarded, and every node shows them at one
#     revision;
#   - long-poll: a watch returns after a change made by another request; a
#     short wait returns with the same index;
#   - fulcrumctl: a service and backends created through it appear on every
#     node at the same revision; exit codes 1 (refused), 2 (usage), 3 (no
#     address answers).
# Usage: tests/e2e/cluster_api.sh BINDIR. Exit 0 = pass, 77 = skipped, else fail.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
. tests/e2e/cluster_lib.bash
cl_init api 1 "${1:-}"
cl_need curl
[ -n "$PY" ] || skip "python3 not installed (make deps installs it)"
[ -x "$BIN/fulcrumctl" ] || die "$BIN/fulcrumctl missing"

# Known issue (docs/cluster.md): a follower that forwarded a request leaks the
# forwarding connection at exit; the clean-stop check tolerates that leak alone.
TOKEN=fulcrum-lab-admin-token # the shipped files' tokens
REGTOKEN=fulcrum-lab-register-web
A=(-H "Authorization: Bearer $TOKEN")
R=(-H "Authorization: Bearer $REGTOKEN")
J=(-H "Content-Type: application/json")

# Longer election timeouts than the shipped 150-300 ms: this script checks that
# refused requests leave the revision alone, and a spurious election on a
# loaded CI machine would add an entry.
for n in 1 2 3; do cl_conf_shipped "$n" 's/election_min_ms = [0-9]*/election_min_ms = 1000/'; done
cl_check_conf 1
for n in 1 2 3; do start "$n"; done

L=$(wait_leader 45 1 2 3) || die "no leader agreed on by all 3 nodes within 45 s"
read -r REV DIG <<<"$(wait_step 30 1 1 2 3)"
[ -n "${REV:-}" ] || die "nodes did not reach one revision and digest within 30 s"
F=$((L % 3 + 1))  # a follower
F2=$((F % 3 + 1)) # the other follower
[ "$F2" != "$L" ] || F2=$((F2 % 3 + 1))
pass "cluster up: leader $L, followers $F and $F2, all at revision $REV, digest $DIG"

# rev N: node N's revision from /v1/status (answered locally).
rev() { api "$1" GET /v1/status | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["revision"])' 2>/dev/null; }

# ---- open endpoints
req "$F" GET /healthz
expect "GET /healthz (no token)" 200 'd == {"status": "ok"}'
req "$F" GET /readyz
expect "GET /readyz on a follower" 200 "d['status'] == 'ready' and d['leader'] == $L and d['applied'] == d['commit'] >= $REV"
req "$F" GET /metrics
if [ "$CODE" = 200 ] && grep -q '^fulcrum_raft_term [0-9]' <<<"$BODY" && grep -q '^fulcrum_raft_is_leader 0' <<<"$BODY" &&
	grep -q '^fulcrum_state_revision [0-9]' <<<"$BODY" && grep -q '^fulcrum_api_responses_total{code="2xx"} [0-9]' <<<"$BODY"; then
	pass "GET /metrics (no token): Prometheus text with raft, state and response counters"
else
	fail "GET /metrics: $CODE ${BODY:0:300}"
fi

# ---- status and members
for n in 1 2 3; do
	req "$n" GET /v1/status "${A[@]}"
	role=follower
	[ "$n" = "$L" ] && role=leader
	expect "GET /v1/status on node $n" 200 "d['id'] == $n and d['role'] == '$role' and d['leader'] == $L and
		d['leader_api'] == '127.0.0.1:$(api_port "$L")' and d['revision'] >= $REV and d['applied'] >= d['revision'] and
		len(d['state_digest']) == 16 and d['forwarding_digest'] == '$DIG' and d['services'] == 1 and
		d['leases'] == 0 and sorted(m['id'] for m in d['members']) == [1, 2, 3]"
	grep -qi '^content-type: application/json' <<<"$HDRS" && [ "$IDX" = "$REV" ] ||
		fail "/v1/status on node $n: Content-Type or X-Fulcrum-Index ($IDX, expected $REV) wrong"
done
req "$F" GET /v1/members "${A[@]}"
expect "GET /v1/members" 200 "sorted(m['id'] for m in d['members']) == [1, 2, 3] and
	[m['id'] for m in d['members'] if m['leader']] == [$L] and all(m['voter'] for m in d['members']) and
	{m['id']: m['api_address'] for m in d['members']} == {i: '127.0.0.1:%d' % ($BASE + 5 + i) for i in (1, 2, 3)}"

# ---- auth and scope: refused requests change nothing
R0=$(rev "$L")
req "$F" GET /v1/services
expect "no token" 401 "d['error']['code'] == 'unauthorized'"
req "$F" POST /v1/services -H "Authorization: Bearer not-a-token" -d '{"name":"evil","vip":"10.99.0.66","port":80}'
expect "wrong token on a write" 401 "d['error']['code'] == 'unauthorized'"
req "$F" POST /v1/services "${A[@]}" -d '{"name":"other","vip":"10.99.0.110","port":80}'
expect "admin creates service other through follower $F" 201 "d['name'] == 'other'"
R0=$IDX
req "$F" POST /v1/services/other/backends "${R[@]}" -d '{"address":"10.99.3.1","port":80,"ttl_ms":600000}'
expect "registration token (web) registers in service other" 403 "d['error']['code'] == 'forbidden'"
req "$L" POST /v1/services/web/backends "${R[@]}" -d '{"address":"10.99.3.2","port":8080}'
expect "registration token registers a static backend" 403 "d['error']['code'] == 'forbidden'"
req "$L" POST /v1/services "${R[@]}" -d '{"name":"evil","vip":"10.99.0.66","port":80}'
expect "registration token creates a service" 403 "d['error']['code'] == 'forbidden'"
WEB1=$(jget "d['backends'][0]['id']" "$(api "$L" GET /v1/services/web/backends)")
req "$L" DELETE "/v1/services/web/backends/$WEB1" "${R[@]}"
expect "registration token deletes a static backend" 403 "d['error']['code'] == 'forbidden'"
req "$F" GET /v1/services/other "${R[@]}"
expect "registration token reads service other" 403 "d['error']['code'] == 'forbidden'"
r1=$(rev "$L")
[ -n "$r1" ] && [ "$r1" = "$R0" ] && pass "the refused requests left the revision at $R0" ||
	fail "revision moved from $R0 to $r1 across refused requests"
req "$F" GET /v1/services "${R[@]}"
expect "registration token lists only its services" 200 "[s['name'] for s in d['services']] == ['web']"
req "$F" POST /v1/services/web/backends "${R[@]}" -d '{"address":"10.99.3.3","port":8080,"ttl_ms":600000}'
expect "registration token registers in web with a lease" 201 "d['lease'] > 0 and d['address'] == '10.99.3.3'"
REGID=$(jget "d['id']")
REGLEASE=$(jget "d['lease']")
req "$F" DELETE "/v1/services/web/backends/$REGID" "${R[@]}"
expect "registration token deregisters its own backend" 200 "d == {'id': $REGID, 'deleted': True}"
req "$F" DELETE "/v1/leases/$REGLEASE" "${R[@]}"
expect "registration token revokes its lease" 200 "d['id'] == $REGLEASE and d['revoked'] is True"

# ---- bad requests: 400 / 413, nothing changes
R0=$(rev "$L")
req "$F" POST /v1/services "${A[@]}" -d '{"name":"x","vip":'
expect "bad JSON" 400 "d['error']['code'] == 'bad_request'"
req "$F" POST /v1/services "${A[@]}" -d '[1,2]'
expect "JSON that is not an object" 400 "d['error']['code'] == 'bad_request'"
req "$F" POST /v1/services "${A[@]}" -d '{"name":"x","vip":"10.99.0.120","port":80,"colour":"red"}'
expect "unknown field" 400 "d['error']['code'] == 'bad_request' and 'colour' in d['error']['message']"
req "$F" POST /v1/services "${A[@]}" -d '{"name":"x","vip":"10.99.0.120","port":"80"}'
expect "wrong type" 400 "d['error']['code'] == 'bad_request'"
req "$F" POST /v1/services "${A[@]}" -d '{"name":"x","vip":"10.99.0.120","port":80,"table_size":1000}'
expect "table size not prime" 400 "d['error']['code'] == 'invalid'"
req "$F" PATCH "/v1/services/web/backends/$WEB1" "${A[@]}" -d '{"weight":-1}'
expect "negative weight" 400 "d['error']['code'] in ('bad_request', 'invalid')"
"$PY" -c 'import json; print(json.dumps({"name": "big", "vip": "10.99.0.121", "port": 80, "pad": "x" * 100000}))' >"$W/big.json"
req "$F" POST /v1/services "${A[@]}" --data-binary @"$W/big.json"
expect "body of 100 KB (limit 64 KiB)" 413 "d['error']['code'] == 'too_large'"
req "$F" PATCH /v1/services "${A[@]}"
expect "wrong method" 405 "d['error']['code'] == 'method_not_allowed'"
req "$F" GET /v1/nowhere "${A[@]}"
expect "unknown path" 404 "d['error']['code'] == 'not_found'"
req "$F" POST /v1/services "${A[@]}" -H "X-Fulcrum-Forwarded: 9" -d '{"name":"loop","vip":"10.99.0.122","port":80}'
expect "forwarded request reaching a follower (no loops)" 503 "d['error']['code'] == 'no_leader'"
r1=$(rev "$L")
[ -n "$r1" ] && [ "$r1" = "$R0" ] && pass "the bad requests left the revision at $R0" ||
	fail "revision moved from $R0 to $r1 across bad requests"

# ---- services
req "$F" GET /v1/services "${A[@]}"
expect "GET /v1/services" 200 "[s['name'] for s in d['services']] == ['other', 'web']"
req "$F" POST /v1/services "${A[@]}" -d '{"name":"api","vip":"10.99.0.130","port":80,"protocol":"udp","mode":"nat","table_size":251,"health":{"type":"tcp","interval_ms":1000,"timeout_ms":500,"rise":2,"fall":3}}'
expect "POST /v1/services through follower $F" 201 "d['name'] == 'api' and d['protocol'] == 'udp' and d['mode'] == 'nat' and
	d['table_size'] == 251 and d['health']['type'] == 'tcp' and d['created'] == d['modified'] and d['backends'] == 0"
SREV=$IDX
[ -n "$SREV" ] && jok "d['created'] == $SREV" && pass "the create's X-Fulcrum-Index is its revision ($SREV)" ||
	fail "X-Fulcrum-Index $SREV is not the create's revision: $BODY"
req "$F2" POST /v1/services "${A[@]}" -d '{"name":"api","vip":"10.99.0.131","port":80}'
expect "POST an existing service" 409 "d['error']['code'] == 'exists'"
req "$F2" POST /v1/services "${A[@]}" -d '{"name":"clash","vip":"10.99.0.130","port":80,"protocol":"udp"}'
expect "POST a service on a taken VIP:port/proto" 409 "d['error']['code'] == 'conflict'"
# Forwarded write: the entry reaches every node at one revision.
read -r r d <<<"$(wait_step 30 "$SREV" 1 2 3)"
[ -n "${r:-}" ] && pass "the forwarded create is on all 3 nodes: revision $r, digest $d" ||
	fail "the forwarded create (revision $SREV) did not reach every node"
ok=1
for n in 1 2 3; do
	req "$n" GET '/v1/services/api?stale=1' "${A[@]}"
	[ "$CODE" = 200 ] && jok "d['created'] == $SREV and d['vip'] == '10.99.0.130'" || { ok=0; info "node $n: $CODE $BODY"; }
done
[ "$ok" = 1 ] && pass "GET /v1/services/api?stale=1 on every node: the same object, created at $SREV" ||
	fail "stale reads of service api differ between nodes"
req "$F" GET /v1/services/api "${A[@]}"
expect "GET /v1/services/api (linearizable, via follower)" 200 "d['name'] == 'api' and d['port'] == 80"
req "$F" GET /v1/services/nosuch "${A[@]}"
expect "GET a missing service" 404 "d['error']['code'] == 'not_found'"
req "$F" PUT /v1/services/api "${A[@]}" -d '{"vip":"10.99.0.130","port":81,"protocol":"udp","mode":"nat","table_size":251}'
expect "PUT /v1/services/api" 200 "d['port'] == 81 and d['modified'] > d['created'] == $SREV and d['health']['type'] == 'none'"
req "$F" PUT /v1/services/nosuch "${A[@]}" -d '{"vip":"10.99.0.140","port":80}'
expect "PUT a missing service" 404 "d['error']['code'] == 'not_found'"

# ---- backends and leases
req "$F" POST /v1/services/api/backends "${A[@]}" -d '{"address":"10.99.4.1","port":8080,"weight":10}'
expect "POST a static backend" 201 "d['address'] == '10.99.4.1' and d['port'] == 8080 and d['weight'] == 10 and
	d['lease'] == 0 and d['state'] == 'active' and d['draining'] is False and d['down'] is False"
B1=$(jget "d['id']")
req "$F" POST /v1/services/api/backends "${A[@]}" -d '{"address":"10.99.4.1","port":8080,"weight":20}'
expect "POST the same backend again (re-register)" 200 "d['id'] == $B1 and d['weight'] == 20"
req "$L" POST /v1/leases "${A[@]}" -d '{"service":"api","ttl_ms":600000}'
expect "POST /v1/leases" 201 "d['service'] == 'api' and d['ttl_ms'] == 600000 and d['id'] == d['granted'] > 0"
LS=$(jget "d['id']")
req "$F" GET "/v1/leases/$LS" "${A[@]}"
expect "GET /v1/leases/$LS" 200 "d['id'] == $LS and d['service'] == 'api'"
req "$F" POST /v1/services/api/backends "${A[@]}" -d "{\"address\":\"10.99.4.2\",\"lease\":$LS}"
expect "POST a backend on an existing lease (port defaults to the service's)" 201 "d['lease'] == $LS and d['port'] == 81 and d['weight'] == 100"
B2=$(jget "d['id']")
req "$F2" POST /v1/services/api/backends "${A[@]}" -d '{"address":"10.99.4.3","ttl_ms":600000}'
expect "POST a backend with ttl_ms (implicit lease)" 201 "d['lease'] > $LS"
B3=$(jget "d['id']")
L3=$(jget "d['lease']")
req "$F" POST /v1/services/api/backends "${A[@]}" -d '{"address":"10.99.4.4","lease":999999}'
expect "POST a backend on a missing lease" 404 "d['error']['code'] == 'not_found'"
req "$F" POST /v1/services/nosuch/backends "${A[@]}" -d '{"address":"10.99.4.4"}'
expect "POST a backend in a missing service" 404 "d['error']['code'] == 'not_found'"
req "$F2" PUT "/v1/leases/$LS/keepalive" "${A[@]}"
expect "PUT keepalive through a follower" 200 "d == {'id': $LS, 'ttl_ms': 600000}"
req "$F" POST "/v1/leases/$L3/keepalive" "${A[@]}"
expect "POST keepalive" 200 "d['id'] == $L3"
req "$F" PUT /v1/leases/999999/keepalive "${A[@]}"
expect "keepalive of a missing lease" 404 "d['error']['code'] == 'not_found'"
req "$F" GET /v1/services/api/backends "${A[@]}"
expect "GET backends" 200 "d['service'] == 'api' and [b['id'] for b in d['backends']] == sorted([$B1, $B2, $B3])"
req "$F" GET "/v1/services/api/backends/$B2" "${A[@]}"
expect "GET one backend" 200 "d['id'] == $B2 and d['address'] == '10.99.4.2'"
req "$F" GET /v1/services/api/backends/12345 "${A[@]}"
expect "GET a missing backend" 404 "d['error']['code'] == 'not_found'"
req "$F" PATCH "/v1/services/api/backends/$B1" "${A[@]}" -d '{"weight":50,"drain":true}'
expect "PATCH weight + drain through a follower" 200 "d['weight'] == 50 and d['draining'] is True and d['state'] == 'draining'"
req "$F" PUT "/v1/services/api/backends/$B2" "${A[@]}" -d '{"state":"down"}'
expect "PUT (PATCH synonym) state down" 200 "d['down'] is True and d['state'] == 'down'"
req "$F" GET '/v1/services/api/backends?healthy=1' "${A[@]}"
expect "GET backends?healthy=1" 200 "[b['id'] for b in d['backends']] == [$B3]"
req "$F" GET /v1/services/api/endpoints "${A[@]}"
expect "GET endpoints (effective weights)" 200 "d['service'] == 'api' and d['index'] >= $SREV and
	{e['id']: (e['weight'], e['state']) for e in d['endpoints']} == {$B1: (0, 'draining'), $B2: (0, 'down'), $B3: (100, 'active')}"
req "$F" GET '/v1/services/api/endpoints?healthy=1' "${A[@]}"
expect "GET endpoints?healthy=1" 200 "[e['id'] for e in d['endpoints']] == [$B3]"
req "$F" PATCH "/v1/services/api/backends/$B1" "${A[@]}" -d '{"drain":false}'
expect "PATCH undrain" 200 "d['draining'] is False and d['weight'] == 50 and d['state'] == 'active'"

# ---- long-poll on a follower, woken by a write through the leader
req "$F2" GET /v1/services/api/endpoints "${A[@]}"
EI=$(jget "d['index']")
[ -n "$EI" ] && [ "$IDX" = "$EI" ] || fail "endpoints index $EI and X-Fulcrum-Index $IDX differ"
curl -s --max-time 40 "${A[@]}" -o "$W/watch" "http://127.0.0.1:$(api_port "$F2")/v1/services/api/endpoints?index=$EI&wait=30s" &
WPID=$!
# A change to another service must not wake it up.
req "$L" POST /v1/services/other/backends "${A[@]}" -d '{"address":"10.99.3.9","port":80}'
[ "$CODE" = 201 ] || fail "register in service other: $CODE $BODY"
wait_step 20 "$IDX" 1 2 3 >/dev/null || fail "nodes did not reach revision $IDX"
sleep 0.5
if kill -0 "$WPID" 2>/dev/null; then
	pass "a watch with index=$EI keeps waiting while nothing changes in its service"
else
	fail "the watch returned before its service changed: $(cat "$W/watch")"
fi
req "$L" POST /v1/services/api/backends "${A[@]}" -d '{"address":"10.99.4.5","port":81}'
expect "register a backend through the leader while the watch waits" 201 "d['address'] == '10.99.4.5'"
B5=$(jget "d['id']")
B5REV=$IDX
if timeout 20 tail -s 0.1 --pid="$WPID" -f /dev/null >/dev/null 2>&1; then
	wait "$WPID"
	W1=$(cat "$W/watch")
	jok "d['index'] == $B5REV and $B5 in [e['id'] for e in d['endpoints']]" "$W1" &&
		pass "the watch returned after the change: index $EI -> $B5REV, new endpoint listed" ||
		fail "the watch returned something else: $W1 (expected index $B5REV with $B5)"
else
	kill "$WPID" 2>/dev/null
	fail "the watch did not return within 20 s of a change to its service"
fi
req "$F2" GET "/v1/services/api/endpoints?index=$B5REV&wait=300ms" "${A[@]}"
expect "a watch with a short wait returns with the same index" 200 "d['index'] == $B5REV and len(d['endpoints']) == 4"
[ "$IDX" = "$B5REV" ] || fail "short watch: X-Fulcrum-Index $IDX, expected $B5REV"
req "$F2" GET "/v1/services/api/endpoints?index=1&wait=30s" "${A[@]}"
expect "a watch with an old index answers at once" 200 "d['index'] == $B5REV"
req "$F2" GET "/v1/services/api/endpoints?index=$B5REV&wait=soon" "${A[@]}"
expect "a watch with a bad wait" 400 "d['error']['code'] == 'bad_request'"

# ---- deletes
req "$F" DELETE "/v1/services/api/backends/$B5" "${A[@]}"
expect "DELETE a backend" 200 "d == {'id': $B5, 'deleted': True}"
req "$F" GET "/v1/services/api/backends/$B5" "${A[@]}"
expect "GET the deleted backend" 404 "d['error']['code'] == 'not_found'"
req "$F" DELETE "/v1/leases/$LS" "${A[@]}"
expect "DELETE a lease (revoke)" 200 "d == {'id': $LS, 'revoked': True, 'backends_removed': 1}"
req "$F" GET "/v1/leases/$LS" "${A[@]}"
expect "GET the revoked lease" 404 "d['error']['code'] == 'not_found'"
req "$F" PUT "/v1/leases/$LS/keepalive" "${A[@]}"
expect "keepalive of the revoked lease" 404 "d['error']['code'] == 'not_found'"
req "$F" GET "/v1/services/api/backends/$B2" "${A[@]}"
expect "the revoked lease's backend is gone" 404 "d['error']['code'] == 'not_found'"
req "$F" DELETE /v1/services/api "${A[@]}"
expect "DELETE a service" 200 "d == {'name': 'api', 'deleted': True, 'backends_removed': 2}"
req "$F" GET "/v1/leases/$L3" "${A[@]}"
expect "the deleted service's lease is gone" 404 "d['error']['code'] == 'not_found'"
req "$F" DELETE /v1/services/api "${A[@]}"
expect "DELETE a missing service" 404 "d['error']['code'] == 'not_found'"

# ---- membership (a learner that never runs: added, then removed)
req "$F" POST /v1/members "${A[@]}" -d "{\"id\":4,\"raft_address\":\"127.0.0.1:$(raft_port 4)\",\"api_address\":\"127.0.0.1:$(api_port 4)\"}"
expect "POST /v1/members (learner 4)" 201 "d['id'] == 4 and d['voter'] is False and d['raft_address'] == '127.0.0.1:$(raft_port 4)'"
req "$F" POST /v1/members "${A[@]}" -d "{\"id\":4,\"raft_address\":\"127.0.0.1:$(raft_port 4)\",\"api_address\":\"127.0.0.1:$(api_port 4)\"}"
expect "POST /v1/members with a known id" 409 "d['error']['code'] == 'exists'"
req "$F" POST /v1/members/9/promote "${A[@]}"
expect "promote an unknown member" 404 "d['error']['code'] == 'not_found'"
req "$F" POST "/v1/members/$F2/promote" "${A[@]}"
expect "promote a voter" 409 "d['error']['code'] in ('conflict', 'exists')"
req "$F" GET /v1/members "${A[@]}"
expect "GET /v1/members lists the learner" 200 "[m['voter'] for m in d['members'] if m['id'] == 4] == [False]"
req "$F" DELETE /v1/members/4 "${A[@]}"
expect "DELETE /v1/members/4" 200 "d['id'] == 4 and d['removed'] is True"
req "$F" GET /v1/members "${A[@]}"
expect "GET /v1/members after the removal" 200 "sorted(m['id'] for m in d['members']) == [1, 2, 3]"

# ---- fulcrumctl: writes through a follower, reads on every node
ctl() { "$BIN/fulcrumctl" --token "$TOKEN" --timeout 15 "$@"; }
ALL="127.0.0.1:$(api_port 1),127.0.0.1:$(api_port 2),127.0.0.1:$(api_port 3)"
FS="127.0.0.1:$(api_port "$F")"
ctl -s "$FS" --json service create shop --vip 10.99.0.150 --port 443 >"$W/o" 2>"$W/e" &&
	jok "d['name'] == 'shop' and d['port'] == 443" "$(cat "$W/o")" && pass "fulcrumctl service create (through follower $F)" ||
	fail "fulcrumctl service create: $(cat "$W/o" "$W/e")"
ctl -s "$FS" --json backend add shop 10.99.5.1:443 --weight 5 >"$W/o" 2>"$W/e" &&
	ctl -s "$FS" --json backend add shop 10.99.5.2 --ttl 600s >"$W/o2" 2>>"$W/e" &&
	ctl -s "$FS" --json backend drain shop 10.99.5.1:443 >"$W/o3" 2>>"$W/e" ||
	fail "fulcrumctl backend add / drain: $(cat "$W/o" "$W/o2" "$W/o3" "$W/e" 2>/dev/null)"
LAST=$(jget "d['modified']" "$(api "$L" GET /v1/services/shop)")
read -r r d <<<"$(wait_step 30 "${LAST:-1}" 1 2 3)"
[ -n "${r:-}" ] || fail "nodes did not reach the fulcrumctl writes' revision $LAST"
ok=1
ref=
for n in 1 2 3; do
	s=$(ctl -s "127.0.0.1:$(api_port "$n")" --json status) || { ok=0; info "status on $n failed"; continue; }
	b=$(ctl -s "127.0.0.1:$(api_port "$n")" --json --stale backend list shop) || { ok=0; info "backend list on $n failed"; continue; }
	cur=$(jget "(d['revision'], d['state_digest'], d['forwarding_digest'])" "$s")/$(jget "sorted((x['address'], x['port'], x['weight'], x['state'], x['lease'] > 0) for x in d['backends'])" "$b")
	[ -z "$ref" ] && ref=$cur
	[ "$cur" = "$ref" ] || { ok=0; info "node $n: $cur, node 1..: $ref"; }
done
if [ "$ok" = 1 ] && [[ "$ref" == *'[["10.99.5.1", 443, 5, "draining", false], ["10.99.5.2", 443, 100, "active", true]]'* ]]; then
	pass "fulcrumctl status / backend list --stale on each node: same revision, digests and backends ($ref)"
else
	fail "fulcrumctl views differ between nodes or miss the backends: $ref"
fi
ctl -s "$ALL" endpoints shop >"$W/o" 2>&1 && grep -q '10.99.5.2 *443 *100 *active' "$W/o" &&
	pass "fulcrumctl endpoints prints the table" || fail "fulcrumctl endpoints: $(cat "$W/o")"

# exit codes
ctl -s "$ALL" --json service create shop --vip 10.99.0.151 --port 443 >"$W/o" 2>"$W/e"
rc=$?
[ "$rc" = 1 ] && jok "d['error']['code'] == 'exists'" "$(cat "$W/o")" && pass "fulcrumctl on a refusal: exit 1, error JSON on stdout" ||
	fail "fulcrumctl on a refusal: exit $rc, $(cat "$W/o" "$W/e")"
"$BIN/fulcrumctl" -s "$ALL" service list >"$W/o" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q unauthorized "$W/o" && pass "fulcrumctl without a token: exit 1 (unauthorized)" ||
	fail "fulcrumctl without a token: exit $rc, $(cat "$W/o")"
DEAD="127.0.0.1:$(api_port 5)"
ctl -s "$DEAD" status >"$W/o" 2>&1
rc=$?
[ "$rc" = 3 ] && pass "fulcrumctl with no address answering: exit 3" || fail "fulcrumctl, no address answering: exit $rc, $(cat "$W/o")"
ctl -s "$DEAD,$FS" --json status >"$W/o" 2>"$W/e" && jok "d['id'] == $F" "$(cat "$W/o")" &&
	pass "fulcrumctl tries the next address when the first does not answer" ||
	fail "fulcrumctl failover to the next address: $(cat "$W/o" "$W/e")"
ctl -s "$ALL" service create >"$W/o" 2>&1
rc=$?
ctl -s "$ALL" frobnicate >>"$W/o" 2>&1
rc2=$?
ctl -s "$ALL" service create x --vip 10.99.0.160 --port notaport >>"$W/o" 2>&1
rc3=$?
[ "$rc$rc2$rc3" = 222 ] && pass "fulcrumctl usage errors: exit 2" || fail "fulcrumctl usage errors: exit $rc/$rc2/$rc3, $(cat "$W/o")"
req "$L" GET /v1/services/x "${A[@]}"
[ "$CODE" = 404 ] || fail "a usage error created service x: $CODE $BODY"

# ---- everything above: one state everywhere, then a clean stop
NOW=$(rev "$L")
read -r r d <<<"$(wait_step 30 "${NOW:-1}" 1 2 3)"
[ -n "${r:-}" ] && pass "all 3 nodes at revision $r with forwarding digest $d" ||
	fail "nodes did not converge on one revision and digest"
cl_stop_all
cl_finish
