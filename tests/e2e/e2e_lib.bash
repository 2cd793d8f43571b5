# Shared helpers of the end-to-end lab tests (sourced by tests/e2e/*.sh; not a
# test itself, hence not *.sh). Each script builds its own lab with
# tools/lab.sh under its own PREFIX, so tests never touch a `make run` lab.
#
# Conventions: check/fail print one line per finding; the script ends with
# e2e_finish, which exits 0 when no check failed. The EXIT trap stops fulcrumd
# and tears the lab down whatever happened.

E2E_FAILS=0
FD_PID=
E2E_LOGSHOWN=

skip() { echo "SKIP: $*"; exit 77; }
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; E2E_FAILS=$((E2E_FAILS + 1)); }
info() { echo "      $*"; }
# die: a check that the rest of the script depends on failed.
die() { fail "$*"; exit 1; }

# e2e_init PREFIX BINDIR: skip (77) when this machine cannot run the lab.
e2e_init() {
	PREFIX=$1
	BIN=${2:-}
	export PREFIX
	[ -n "$BIN" ] && [ -x "$BIN/fulcrumd" ] || { echo "FAIL: usage: $0 BINDIR (with BINDIR/fulcrumd)"; exit 2; }
	[ -x tools/lab.sh ] || { echo "FAIL: run from the repository root (tools/lab.sh not found)"; exit 2; }
	[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
	local c
	for c in ip ethtool python3 curl wrk nft ss sha256sum timeout; do
		command -v "$c" >/dev/null || skip "$c not installed (make deps installs it)"
	done
	ip netns add "$PREFIX-probe" 2>/dev/null || skip "cannot create network namespaces here (ip netns add failed)"
	ip netns del "$PREFIX-probe"
	W=$(mktemp -d "/tmp/fulcrum-e2e-$PREFIX.XXXXXX")
	FD_LOG=$W/fulcrumd.log
	FD_CONF=$W/fulcrumd.conf
	trap e2e_cleanup EXIT
	trap 'exit 130' INT TERM
	tools/lab.sh up >"$W/lab.log" 2>&1 || { cat "$W/lab.log"; die "lab did not come up"; }
	info "$(tail -1 "$W/lab.log")"
}

e2e_show_log() {
	[ -n "$E2E_LOGSHOWN" ] && return
	E2E_LOGSHOWN=1
	[ -s "${FD_LOG:-}" ] || return 0
	echo "---- fulcrumd log (last 40 lines, EAL lines left out)"
	grep -v '^EAL\|^TELEMETRY' "$FD_LOG" | tail -40
	echo "----"
}

e2e_cleanup() {
	local rc=$?
	set +e
	trap '' INT TERM
	if [ -n "$FD_PID" ] && kill -0 "$FD_PID" 2>/dev/null; then
		kill -TERM "$FD_PID"
		timeout 15 tail --pid="$FD_PID" -f /dev/null
		kill -KILL "$FD_PID" 2>/dev/null
	fi
	# Background clients of this script (transfers) are in the lab's
	# namespaces: lab.sh down kills them with everything else.
	tools/lab.sh down >/dev/null 2>&1
	[ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && e2e_show_log
	[ -n "${W:-}" ] && rm -rf "$W"
	exit "$rc"
}

e2e_finish() {
	if [ "$E2E_FAILS" -ne 0 ]; then
		e2e_show_log
		echo "$E2E_FAILS check(s) failed"
		exit 1
	fi
	echo "all checks passed"
	exit 0
}

# nsx NS CMD...: run a command in one of this lab's namespaces (client, lb, be1...).
nsx() { local ns=$1; shift; ip netns exec "$PREFIX-$ns" "$@"; }

# write_conf FILE NAT DSR UDP: the lab's configuration with the given backends,
# each a list like "21:1 22:2" (last address octet:weight). Short FIN/RST
# timeouts let a test reuse client ports once the flows of a finished run
# expired (a closed flow that is still in the table keeps its backend).
write_conf() {
	local f=$1
	be_list() { # PORT "21:1 22:2"
		local port=$1 b sep=""
		for b in $2; do
			printf '%s\n\t\t\t{ address = "10.99.0.%s"; port = %s; weight = %s; }' "$sep" "${b%%:*}" "$port" "${b##*:}"
			sep=","
		done
	}
	cat >"$f" <<EOF
# Written by tests/e2e for the lab of prefix $PREFIX (see tools/lab.sh).
node = {
	name = "$PREFIX-lb";
	address = "10.99.0.2";
	gateway = "10.99.0.10";
	hash_seed = "0x46756c6372756d31";
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
	flows = { capacity = 65536; tcp_fin_timeout = 1; tcp_closed_timeout = 1; udp_timeout = 1; };
};
services = (
	{ name = "web-nat"; vip = "10.99.0.100"; port = 80; proto = "tcp"; mode = "nat"; announce = true;
	  backends = ($(be_list 8080 "$2")
	  ); },
	{ name = "web-dsr"; vip = "10.99.0.101"; port = 80; proto = "tcp"; mode = "dsr"; announce = true;
	  backends = ($(be_list 80 "$3")
	  ); },
	{ name = "udp-nat"; vip = "10.99.0.100"; port = 5353; proto = "udp"; mode = "nat"; announce = true;
	  backends = ($(be_list 5353 "$4")
	  ); }
);
EOF
}

# published_ready: lines saying a revision was published with every backend and
# the gateway resolved.
published_ready() { grep -cE 'published revision [0-9]+ .*: [0-9]+ services, ([0-9]+)/\1 backends resolved, gateway resolved' "$FD_LOG"; }

# wait_ready N: until more than N such lines exist (bounded: 30 s).
wait_ready() {
	local t
	for t in $(seq 1 300); do
		[ "$(published_ready)" -gt "$1" ] && return 0
		kill -0 "$FD_PID" 2>/dev/null || die "fulcrumd exited"
		sleep 0.1
	done
	return 1
}

fd_start() {
	"$BIN/fulcrumd" --check -c "$FD_CONF" >"$W/check.log" 2>&1 || { cat "$W/check.log"; die "fulcrumd --check refused the config"; }
	# Not through nsx: a function in the background is a subshell, and FD_PID
	# must be fulcrumd itself (ip netns exec execs it) for the signals.
	ip netns exec "$PREFIX-lb" "$BIN/fulcrumd" -c "$FD_CONF" >"$FD_LOG" 2>&1 &
	FD_PID=$!
	wait_ready 0 || die "fulcrumd did not publish a fully resolved state within 30 s"
	pass "fulcrumd started and resolved every backend and the gateway: $(grep -oE 'revision [0-9]+ .*' "$FD_LOG" | tail -1)"
}

# fd_reload NAT DSR UDP: rewrite the config, SIGHUP, wait for the new state.
fd_reload() {
	local n
	n=$(published_ready)
	write_conf "$FD_CONF" "$@"
	"$BIN/fulcrumd" --check -c "$FD_CONF" >"$W/check.log" 2>&1 || { cat "$W/check.log"; die "fulcrumd --check refused the new config"; }
	kill -HUP "$FD_PID"
	wait_ready "$n" || die "no fully resolved state published within 30 s of SIGHUP"
	grep -qE 'published revision [0-9]+ \(reload\)' "$FD_LOG" || die "the publish after SIGHUP was not a reload"
	info "reloaded: nat [$1] dsr [$2] udp [$3] -> $(grep -oE 'published revision [0-9]+ .*' "$FD_LOG" | tail -1)"
}

# fd_stats: SIGUSR1, wait for the complete printout, print it (bounded: 10 s).
fd_stats() {
	local n t
	n=$(grep -c '^control: ' "$FD_LOG")
	kill -USR1 "$FD_PID"
	for t in $(seq 1 100); do
		if [ "$(grep -c '^control: ' "$FD_LOG")" -gt "$n" ]; then
			sleep 0.1 # the neighbour lines follow the control line
			awk '/^== fulcrumd counters/ { buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }' "$FD_LOG" |
				grep -v '^20[0-9][0-9]-' # log lines interleaved by other events
			return 0
		fi
		sleep 0.1
	done
	die "no counters printed within 10 s of SIGUSR1"
}

# wait_no_flows: until fulcrumd's flow tables are empty (bounded: 30 s), so
# that ports used before can make new flows.
wait_no_flows() {
	local t live
	for t in $(seq 1 30); do
		live=$(fd_stats | sed -n 's/^worker [0-9]*: .* flows \([0-9]*\) .*/\1/p' | awk '{s += $1} END {print s + 0}')
		[ "$live" -eq 0 ] && return 0
		sleep 1
	done
	die "flows still live 30 s after the last packet (timeouts are 1 s)"
}

# fd_stop: SIGTERM, the exit code must be 0 and no sanitizer report in the log.
fd_stop() {
	local rc
	kill -TERM "$FD_PID"
	if timeout 30 tail --pid="$FD_PID" -f /dev/null; then
		wait "$FD_PID"
		rc=$?
	else
		rc=timeout
	fi
	FD_PID=
	if [ "$rc" = 0 ]; then pass "fulcrumd stopped on SIGTERM with exit code 0"; else fail "fulcrumd stop on SIGTERM: exit $rc"; fi
	if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$FD_LOG"; then
		fail "sanitizer report in the fulcrumd log"
		grep -A30 -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$FD_LOG" | head -60
	fi
}

# flows SERVICE_DST PORT LO HI [--udp] [...]: "SRCPORT BACKEND" per flow, one per source port.
flows() { nsx client python3 tools/lab_client.py flows "$@"; }

# tally FILE: "be1=N be2=N ..." of a "SRCPORT BACKEND" file (failures as FAIL:reason=N).
tally() { awk '{c[$2]++} END {for (k in c) printf "%s=%d\n", k, c[k]}' "$1" | sort | paste -sd' '; }

# Awk functions for fulcrumd's SIGUSR1 statistics; prepend to a program:
# awk "$STATS_AWK"'...'. field(NAME): the number after NAME on this line (-1 if
# none). On each "worker N:" line, handoff_line() adds the worker to q[]
# (frames its own RX queue delivered: rx - handoff_in + handoff, dpdk_dp.h)
# and the handoff counters to out, in_ and full. Once traffic has stopped the
# rings are drained, so every frame handed off was taken by its owner or
# dropped (ring full): handoff_ok() says so, or prints why not.
# handoff_report() prints the figures.
STATS_AWK='
function field(name,   i) { for (i = 1; i < NF; i++) if ($i == name) return $(i + 1) + 0; return -1 }
function handoff_line() {
	w = $2; sub(":", "", w); nw++
	q[w] = field("rx") - field("handoff_in") + field("handoff")
	out += field("handoff"); in_ += field("handoff_in"); full += field("handoff_full")
}
function handoff_report(   w) {
	for (w in q) printf "worker %s own-queue rx %d; ", w, q[w]
	printf "handed off %d, taken %d, ring full %d", out, in_, full
}
function handoff_ok() {
	if (out == 0) { printf "; no reply was handed off"; return 0 }
	if (out != in_ + full) { printf "; handed off != taken + dropped"; return 0 }
	return 1
}
'

# check_spread WHAT FILE "be1:1 be2:2 ...": every answer is a named backend and
# each backend's share matches its weight within 5 standard deviations of a
# binomial count plus 2 % of the sample (Maglev's own table imbalance is well
# under 1 % at the default table size). The runs use fixed source ports, so
# the counts are the same every run; the tolerance only says what "matches"
# means. Equal weights where 1:2:3 are configured, or a backend left out,
# fall far outside it.
check_spread() {
	local what=$1 file=$2 weights=$3 out
	if out=$(awk -v weights="$weights" '
		BEGIN { n = split(weights, w, " "); for (i = 1; i <= n; i++) { split(w[i], kv, ":"); want[kv[1]] = kv[2]; tot += kv[2] } }
		{ c[$2]++; all++ }
		END {
			ok = 1
			for (b in c) if (!(b in want)) { printf "unexpected answer %s x%d; ", b, c[b]; ok = 0 }
			for (b in want) {
				p = want[b] / tot; e = all * p; sd = sqrt(all * p * (1 - p)); tol = 5 * sd + 0.02 * all
				got = c[b] + 0
				printf "%s %d (expected %.0f +- %.0f) ", b, got, e, tol
				if (got < e - tol || got > e + tol) { ok = 0; printf "OUT OF RANGE " }
			}
			exit !ok
		}' "$file"); then
		pass "$what: $out"
	else
		fail "$what: $out"
	fi
}

# ---- IPv6 (tests/e2e/ipv6.sh) ----
# tools/lab.sh turns IPv6 off on every veth; these helpers turn it on again in
# the client and backend namespaces, on top of the IPv4 lab. The node's port
# fc-lb0 keeps IPv6 off in the kernel: with it on, the kernel would hold a
# link-local address there and answer for it (LAB.md: the kernel must not own
# addresses on a port DPDK drives); fd00:99::2 lives in fulcrumd's config only.
SUBNET6=fd00:99:
LAB6_VIP=fd00:99::101

# lab6_up DIR: client fd00:99::10/64, backends fd00:99::2N/64 with the dsr VIP
# on lo (/128), and on each backend an HTTP server on [VIP]:80 that serves
# DIR/beN/id ("beN") and logs every request to DIR/beN-http.log. nodad: the
# addresses are usable at once (no duplicate address detection period).
lab6_up() {
	local dir=$1 i ns t
	nsx client sysctl -qw net.ipv6.conf.fc-cl0.disable_ipv6=0 || return 1
	nsx client ip -6 addr add "$SUBNET6:10/64" dev fc-cl0 nodad || return 1
	for i in 1 2 3; do
		ns=be$i
		nsx "$ns" sysctl -qw net.ipv6.conf.fc-be0.disable_ipv6=0 net.ipv6.conf.lo.disable_ipv6=0 || return 1
		nsx "$ns" ip -6 addr add "$SUBNET6:2$i/64" dev fc-be0 nodad || return 1
		nsx "$ns" ip -6 addr add "$LAB6_VIP/128" dev lo nodad || return 1
		mkdir -p "$dir/$ns"
		echo "$ns" >"$dir/$ns/id"
		# Bound to the VIP only: lab_servers.py holds 0.0.0.0:80 already.
		ip netns exec "$PREFIX-$ns" setsid python3 -m http.server 80 --bind "$LAB6_VIP" \
			--directory "$dir/$ns" </dev/null >"$dir/$ns-http.log" 2>&1 &
	done
	for i in 1 2 3; do
		for t in $(seq 1 100); do
			[ -n "$(nsx "be$i" ss -Hltn "src [$LAB6_VIP]:80")" ] && break
			[ "$t" -eq 100 ] && { cat "$dir/be$i-http.log"; return 1; }
			sleep 0.1
		done
	done
}

# lab_mac NS IF: the kernel's MAC address of IF in one of this lab's namespaces.
lab_mac() { nsx "$1" cat "/sys/class/net/$2/address"; }

# fd_port_mac: the MAC fulcrumd's port came up with (from its log).
fd_port_mac() { sed -n 's/.* up as \([0-9a-f:]\{17\}\),.*/\1/p' "$FD_LOG" | head -1; }
