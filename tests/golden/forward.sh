#!/bin/bash
# Golden test: the real fulcrumd dataplane on a net_pcap port (issue 3, section 4).
#
#   tests/golden/forward.sh BINDIR      (BINDIR holds fulcrumd, pcapgen, pcapcheck)
#
# pcapgen writes the crafted input (TCP, UDP, ARP, ICMP, IPv6, fragments,
# malformed frames) and what must happen to each packet; fulcrumd forwards it
# from rx_pcap to tx_pcap; pcapcheck checks the output field by field and the
# drop counters, and writes a text dump of every output packet, which must
# equal tests/golden/forward.expected. To accept a deliberate change of
# behaviour, regenerate that file (docs/testing.md):
#
#   GOLDEN_UPDATE=1 build/plain/tests/golden_forward
#
# Exit 0 pass, 77 skipped (no net_pcap PMD), anything else fail.
set -u

BIN=${1:?usage: forward.sh BINDIR}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NAME=forward
CONF=$ROOT/tests/golden/$NAME.conf
GOLDEN=$ROOT/tests/golden/$NAME.expected
TIMEOUT_S=20

for t in fulcrumd pcapgen pcapcheck; do
	if [ ! -x "$BIN/$t" ]; then
		echo "FAIL: $BIN/$t is missing (make $(basename "$(dirname "$BIN")") builds it: make build/$(basename "$(dirname "$BIN")")/.built)"
		exit 1
	fi
done
# The pcap PMD is a plugin of the shared DPDK build; without it there is nothing to test.
if ! ls /usr/lib/*/dpdk/pmds-*/librte_net_pcap.so* >/dev/null 2>&1 &&
	! ls /usr/local/lib*/dpdk/pmds-*/librte_net_pcap.so* >/dev/null 2>&1; then
	echo "SKIP: DPDK's net_pcap PMD (librte_net_pcap.so) is not installed"
	exit 77
fi

TMP=$(mktemp -d /tmp/fulcrum-golden-$NAME.XXXXXX)
PREFIX=golden-$NAME-$$
PID=
cleanup() {
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID" 2>/dev/null
		sleep 1
		kill -KILL "$PID" 2>/dev/null
	fi
	# EAL leaves its (empty, with --no-shconf) runtime directory behind.
	rm -rf "/var/run/dpdk/$PREFIX" "${XDG_RUNTIME_DIR:-/nonexistent}/dpdk/$PREFIX" 2>/dev/null
	if [ -n "${GOLDEN_KEEP:-}" ]; then
		echo "kept $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
# A runner's timeout sends SIGTERM: exit through the EXIT trap, so fulcrumd is stopped.
trap 'exit 1' TERM INT HUP

fail() {
	echo "FAIL: $*"
	if [ -s "$TMP/fulcrumd.log" ]; then
		echo "--- fulcrumd log (last 40 lines)"
		tail -n 40 "$TMP/fulcrumd.log"
	fi
	exit 1
}

# A file prefix of our own: other DPDK processes may run on this machine.
sed -e "s#@IN@#$TMP/in.pcap#" -e "s#@OUT@#$TMP/out.pcap#" \
	-e "s#@PREFIX@#$PREFIX#" "$CONF" >"$TMP/golden.conf" || fail "cannot write the config"
N=$("$BIN/pcapgen" -c "$TMP/golden.conf" -o "$TMP/in.pcap" -e "$TMP/expect.txt") ||
	fail "pcapgen failed"

"$BIN/fulcrumd" -c "$TMP/golden.conf" 2>"$TMP/fulcrumd.log" &
PID=$!

# The last complete counter block (from "== fulcrumd counters" to its "control:" line).
last_block() {
	awk '/^== fulcrumd counters/ { n = 0; blk = "" }
	     { blk = blk $0 "\n" }
	     /^control: / { done = blk }
	     END { printf "%s", done }' "$TMP/fulcrumd.log"
}

# Signals are blocked (and read from a signalfd) only once fulcrumd has started:
# before that, SIGUSR1 would kill it.
deadline=$((SECONDS + TIMEOUT_S))
until grep -q 'fulcrumd running' "$TMP/fulcrumd.log" 2>/dev/null; do
	kill -0 "$PID" 2>/dev/null || fail "fulcrumd did not start"
	[ $SECONDS -ge $deadline ] && fail "fulcrumd did not start in ${TIMEOUT_S}s"
	sleep 0.1
done

# net_pcap's RX returns nothing once the file is read, so "done" is when the
# worker has received every input packet and accounted for each one (sent,
# answered, handed to control or dropped). Ask for counters until then.
acc=none
while :; do
	kill -0 "$PID" 2>/dev/null || fail "fulcrumd exited early"
	if grep -q '^port: ' "$TMP/fulcrumd.log" 2>/dev/null; then
		acc=$(last_block | awk '
			/^worker 0: / { rx = $4; s = $6 + $8 + $10 }
			/^  drops:/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); s += kv[2] } }
			END { print rx + 0, s + 0 }')
		[ "$acc" = "$N $N" ] && break
	fi
	[ $SECONDS -ge $deadline ] && fail "fulcrumd did not account for all $N input packets in ${TIMEOUT_S}s (last: rx, accounted = $acc)"
	kill -USR1 "$PID"
	sleep 0.2
done
# One more block, written after everything was accounted for: the one checked.
before=$(grep -c '^control: ' "$TMP/fulcrumd.log")
kill -USR1 "$PID"
while [ "$(grep -c '^control: ' "$TMP/fulcrumd.log")" -le "$before" ]; do
	[ $SECONDS -ge $deadline ] && fail "no counters after SIGUSR1"
	sleep 0.1
done
last_block >"$TMP/stats.txt"

# A clean stop writes the tx_pcap completely (the port is closed).
kill -TERM "$PID"
wait "$PID"
rc=$?
PID=
[ $rc -eq 0 ] || fail "fulcrumd exited with $rc after SIGTERM"
grep -qE 'ERROR|AddressSanitizer|runtime error' "$TMP/fulcrumd.log" && fail "errors in the fulcrumd log"

MAC=$(sed -n 's/.* up as \([0-9a-f:]\{17\}\),.*/\1/p' "$TMP/fulcrumd.log" | head -n 1)
[ -n "$MAC" ] || fail "no port MAC in the fulcrumd log"

"$BIN/pcapcheck" -c "$TMP/golden.conf" -i "$TMP/in.pcap" -o "$TMP/out.pcap" \
	-e "$TMP/expect.txt" -s "$TMP/stats.txt" -m "$MAC" -d "$TMP/dump.txt" ||
	fail "pcapcheck found a difference (GOLDEN_KEEP=1 keeps $TMP)"

if [ -n "${GOLDEN_UPDATE:-}" ]; then
	{
		echo "# Golden output of tests/golden/$NAME.sh: one line per packet fulcrumd sent"
		echo "# (in#N = the input packet it answers), then the flows and the counters."
		echo "# Regenerate deliberately: GOLDEN_UPDATE=1 build/plain/tests/golden_$NAME"
		cat "$TMP/dump.txt"
	} >"$GOLDEN"
	echo "updated $GOLDEN"
	exit 0
fi
[ -f "$GOLDEN" ] || fail "$GOLDEN is missing (GOLDEN_UPDATE=1 creates it)"
if ! diff -u <(grep -v '^#' "$GOLDEN") "$TMP/dump.txt"; then
	fail "output differs from $GOLDEN (if the change is intended: GOLDEN_UPDATE=1, see docs/testing.md)"
fi
echo "PASS: $N packets in, $(grep -c '^in#' "$TMP/dump.txt") out, all as expected and as in $(basename "$GOLDEN")"
exit 0
