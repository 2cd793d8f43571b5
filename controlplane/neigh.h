/* neigh: the node's neighbour (ARP/ND) table (learned, static, pending entries), ND/MLD frames. */
#ifndef FULCRUM_CONTROLPLANE_NEIGH_H
#define FULCRUM_CONTROLPLANE_NEIGH_H

#include <stdint.h>

#include "dataplane/addr.h"
#include "dataplane/pkt.h"

/*
 * Pure C: no clock, no I/O. Time comes in as `now` (monotonic ns) and ARP
 * requests go out through a callback, so tests drive it deterministically.
 * Owned by the control thread: no locks; every call from that one thread.
 *
 * Entry states:
 *  - STATIC: from the configuration; never ages, never overwritten by ARP.
 *  - REACHABLE: learned from an ARP packet or neighbour discovery; ages out
 *    `timeout` after the last confirmation.
 * A confirmation is a packet that proves the neighbour is reachable at the
 * MAC it names: for IPv4 any ARP packet from it (RFC 826 has no weaker kind),
 * for IPv6 only a solicited advertisement (RFC 4861 7.3.1: S set, an answer
 * to a solicitation). Anything else that names a MAC (an unsolicited
 * advertisement, a solicitation's source link-layer address) is a hint
 * (NEIGH_LEARN_UNCONFIRMED): it may resolve an address or replace a MAC
 * (RFC 4861 7.2.3, 7.2.5: STALE), but never extends the lifetime; a wanted
 * address whose MAC came from a hint is asked at once (the RFC's PROBE), so
 * the new MAC is confirmed, or the entry expires on its old schedule.
 *  - INCOMPLETE: wanted (a backend or the gateway) but no MAC yet; an ARP
 *    request is sent every `retry` until an answer comes.
 * Every address in the wanted set (neigh_set_wanted) has an entry. A wanted
 * REACHABLE entry is re-confirmed before it expires: from half its lifetime
 * on, a request goes out every `retry`, so a live neighbour never flaps to
 * INCOMPLETE (the same idea as Linux's STALE/PROBE states, RFC 4861 section
 * 7.3 for ND; RFC 826 itself has no aging). Only if nobody answers for the
 * rest of the lifetime does it become INCOMPLETE again.
 * Entries that are neither wanted nor static are forgotten when they age out.
 */

enum neigh_state {
	NEIGH_INCOMPLETE = 0,
	NEIGH_REACHABLE = 1,
	NEIGH_STATIC = 2,
};

struct neigh_table;

struct neigh_entry_info {
	struct addr addr;
	uint8_t mac[6];     /* zero while INCOMPLETE */
	uint8_t state;      /* enum neigh_state */
	uint8_t wanted;     /* in the current wanted set */
	/*
	 * ns of the last confirmation (REACHABLE); for an entry resolved by a
	 * hint and never confirmed since, when that hint came.
	 */
	uint64_t confirmed;
	uint32_t requests;  /* ARP requests sent since it was last resolved */
};

/*
 * A table for at most `capacity` entries (1 .. 1<<20). timeout_ns: lifetime
 * of a learned entry (> 0); retry_ns: ARP request interval (> 0). Allocates
 * everything here. NULL on bad arguments or out of memory.
 */
struct neigh_table *neigh_create(uint32_t capacity, uint64_t timeout_ns, uint64_t retry_ns);

/* Free the table. NULL is a no-op. */
void neigh_destroy(struct neigh_table *t);

/* Change the timers (config reload). 0, or -EINVAL for a zero value. */
int neigh_set_timers(struct neigh_table *t, uint64_t timeout_ns, uint64_t retry_ns);

/*
 * Add or replace a static entry (family v4 or v6; the MAC must be unicast).
 * Replaces a learned entry for the same address. 0, -EINVAL, -ENOSPC.
 */
int neigh_add_static(struct neigh_table *t, const struct addr *a, const uint8_t mac[6]);

/* Turn every static entry into a plain learned-nothing entry (config reload, before re-adding). */
void neigh_clear_static(struct neigh_table *t);

/*
 * Replace the wanted set by addrs[0..n). New wanted addresses without an entry
 * become INCOMPLETE with their first request due at once; addresses that are
 * no longer wanted keep a learned MAC until it ages out, but an INCOMPLETE one
 * is dropped. Returns 0, -EINVAL (an address that is not v4/v6), or -ENOSPC
 * (the table cannot hold them all; the addresses that fit are wanted).
 */
int neigh_set_wanted(struct neigh_table *t, const struct addr *addrs, uint32_t n, uint64_t now);

/* How neigh_learn may use what a packet says (flags, or-ed). */
enum neigh_learn_flag {
	/* The packet was addressed to us: an unknown address gets an entry. */
	NEIGH_LEARN_CREATE = 1,
	/*
	 * Keep a resolved entry's MAC when the packet names another: an IPv6
	 * advertisement with Override clear (RFC 4861 7.2.5), as a proxy or an
	 * anycast responder sends, must not take an address from its owner.
	 * It still resolves an INCOMPLETE entry and refreshes a matching one.
	 */
	NEIGH_LEARN_KEEP = 2,
	/*
	 * The packet is a hint, not a confirmation (see the top of this file):
	 * an unsolicited advertisement or a solicitation. The same MAC again
	 * changes nothing; a new one (unless KEEP) is taken without touching
	 * `confirmed`, and a wanted address is asked for at once.
	 */
	NEIGH_LEARN_UNCONFIRMED = 4,
};

/*
 * What an ARP or ND packet taught: `a` is at `mac`. RFC 826's merge rule: an
 * existing entry is updated (refreshed, or its MAC replaced unless
 * NEIGH_LEARN_KEEP; only refreshed by a confirmation, see
 * NEIGH_LEARN_UNCONFIRMED); a new entry is created only with
 * NEIGH_LEARN_CREATE or when the address is wanted. Static entries are not
 * touched.
 * Returns 1 when the resolution of an address changed (INCOMPLETE ->
 * REACHABLE, or a new MAC): the caller must rebuild the forwarding state;
 * 0 otherwise (a refresh, ignored, or no room for an unwanted address);
 * -EINVAL for a bad address, a zero, broadcast or multicast MAC.
 */
int neigh_learn(struct neigh_table *t, const struct addr *a, const uint8_t mac[6], uint64_t now,
		unsigned flags);

/* 1 and *mac filled when `a` is resolved (REACHABLE or STATIC), else 0. */
int neigh_lookup(const struct neigh_table *t, const struct addr *a, uint8_t mac[6]);

/*
 * Timers: send the ARP requests that are due, through request(ctx, addr)
 * (whose return value is ignored: a failed send is retried at the next
 * interval), and age entries out. Returns how many wanted addresses lost
 * their MAC (a REACHABLE entry expired unconfirmed): rebuild the forwarding
 * state when > 0; *lost_v6 (if not NULL) gets how many of them are IPv6, so
 * the caller can name the protocol that went unanswered. Unwanted entries
 * that expire are forgotten silently.
 */
int neigh_tick(struct neigh_table *t, uint64_t now,
	       void (*request)(void *ctx, const struct addr *a), void *ctx, int *lost_v6);

/* Number of entries (any state). */
uint32_t neigh_count(const struct neigh_table *t);

/* Call fn for every entry (order unspecified). fn must not modify the table. */
void neigh_foreach(const struct neigh_table *t,
		   void (*fn)(void *ctx, const struct neigh_entry_info *e), void *ctx);

/* Length of the frames neigh_arp_request() writes: 14 + 28, padded to the 60-byte Ethernet minimum. */
#define NEIGH_ARP_FRAME_LEN 60

/*
 * Write a broadcast ARP request (RFC 826; RFC 5227 section 1.1 keeps the
 * target hardware address zero) "who has `target`, tell `sender_ip` at
 * `sender_mac`" into frame[0 .. NEIGH_ARP_FRAME_LEN). Both addresses must be
 * IPv4. Returns NEIGH_ARP_FRAME_LEN, or -EINVAL (frame too small, not IPv4).
 * Pure; any thread.
 */
int neigh_arp_request(uint8_t *frame, uint32_t size, const uint8_t sender_mac[6],
		      const struct addr *sender_ip, const struct addr *target);

/* Length of the frames neigh_ns_request() writes: 14 + 40 + 32. */
#define NEIGH_NS_FRAME_LEN 86

/*
 * IPv6's ARP request: write a neighbour solicitation (RFC 4861 4.3) "who has
 * `target`", from `sender_ip` at `sender_mac` (Source Link-Layer Address
 * option), to target's solicited-node multicast address and its Ethernet
 * group (33:33:ff:..), hop limit 255, checksum filled, into
 * frame[0 .. NEIGH_NS_FRAME_LEN). Both addresses must be IPv6. Returns
 * NEIGH_NS_FRAME_LEN or -EINVAL. Pure; any thread.
 */
int neigh_ns_request(uint8_t *frame, uint32_t size, const uint8_t sender_mac[6],
		     const struct addr *sender_ip, const struct addr *target);

/* What a neighbour discovery message says besides the address (neigh_nd_parse). */
enum neigh_nd_flag {
	NEIGH_ND_SOLICITED = 1, /* an advertisement's S flag: it answers a solicitation */
	/*
	 * The MAC may replace a different cached one: an advertisement's O
	 * flag (RFC 4861 7.2.5); always set for a solicitation, whose source
	 * link-layer address replaces the cached one (7.2.3).
	 */
	NEIGH_ND_OVERRIDE = 2,
};

/*
 * What a neighbour discovery message (pi from pkt_parse of frame) teaches:
 * an advertisement (136): its target is at the Target Link-Layer Address;
 * a solicitation (135) from a unicast source: the source is at the Source
 * Link-Layer Address. *flags: enum neigh_nd_flag, or-ed. Returns 1 and
 * fills *who, mac, *flags; 0 when the message teaches nothing (no such
 * option, a duplicate-address probe); -EINVAL when it is not neighbour
 * discovery or fails RFC 4861's validity checks (7.1.1, 7.1.2): hop limit
 * 255, ICMPv6 checksum, code 0, ICMP length >= 24, no option of length 0 or
 * running past the end, target not multicast; a solicitation from :: only
 * to a solicited-node group and without a Source Link-Layer Address; an
 * advertisement to a multicast destination with Solicited clear. Pure; any
 * thread.
 */
int neigh_nd_parse(const uint8_t *frame, const struct pkt_info *pi, struct addr *who,
		   uint8_t mac[6], unsigned *flags);

/* The target of a neighbour solicitation that neigh_nd_parse accepted (>= 0). */
void neigh_nd_target(const uint8_t *frame, const struct pkt_info *pi, struct addr *target);

/* Length of the frames neigh_na_reply() writes: 14 + 40 + 24 + 8. */
#define NEIGH_NA_FRAME_LEN 86

/*
 * Answer a neighbour solicitation for one of our addresses (RFC 4861 7.2.4)
 * from the control thread: for the addresses the workers do not answer
 * (fulcrumd's link-local address, neigh_link_local). ns/pi: a solicitation
 * neigh_nd_parse accepted (>= 0) whose target is ours. Writes an
 * advertisement from the target at `mac` (Target Link-Layer Address
 * option), Override set, to the solicitor with Solicited set, or to all
 * nodes (ff02::1) with Solicited clear when it was a duplicate-address probe
 * (source ::), hop limit 255, checksum filled, into
 * frame[0 .. NEIGH_NA_FRAME_LEN). Returns NEIGH_NA_FRAME_LEN or -EINVAL.
 * Pure; any thread.
 */
int neigh_na_reply(uint8_t *frame, uint32_t size, const uint8_t mac[6], const uint8_t *ns,
		   const struct pkt_info *pi);

/* ---- IPv6 addresses of the node and MLD ---- */

/*
 * The link-local address of an interface with this MAC (fe80::/64 plus the
 * modified EUI-64 identifier, RFC 4291 2.5.1 and appendix A: ff:fe in the
 * middle, the universal/local bit inverted). Pure.
 */
void neigh_link_local(struct addr *ll, const uint8_t mac[6]);

/* 1 when `a` is an IPv6 link-local unicast address (fe80::/10). */
int neigh_is_link_local(const struct addr *a);

/*
 * The solicited-node multicast address of an IPv6 unicast address (RFC 4291
 * 2.7.1: ff02::1:ff00:0/104 plus its low 24 bits), where solicitations for
 * it are sent. 0, or -EINVAL (not IPv6, or multicast).
 */
int neigh_solicited_node(struct addr *group, const struct addr *a);

/* MLDv2 multicast address record types (RFC 3810 5.2.12). */
enum neigh_mld_record {
	NEIGH_MLD_IS_EX = 2, /* MODE_IS_EXCLUDE: current state; with no sources, "listening" */
	NEIGH_MLD_TO_IN = 3, /* CHANGE_TO_INCLUDE_MODE, no sources: "left the group" */
	NEIGH_MLD_TO_EX = 4, /* CHANGE_TO_EXCLUDE_MODE, no sources: "joined the group" */
};

/* Records per report: keeps a report (14 + 48 + 8 + 20 per record) well under a 1500-byte MTU. */
#define NEIGH_MLD_MAX_RECORDS 64
#define NEIGH_MLD_FRAME_LEN(n) (14u + 40u + 8u + 8u + 20u * (n))

/*
 * Write an MLDv2 report (RFC 3810 5.2): from `src` (link-local: 5.2.13) at
 * `mac`, to ff02::16 (all MLDv2-capable routers, Ethernet 33:33:00:00:00:16),
 * hop limit 1, a Hop-by-Hop header with the Router Alert option (RFC 2711,
 * value 0 = MLD), ICMPv6 type 143 with one record of `type` and no sources
 * for each of groups[0 .. n), checksum filled, into
 * frame[0 .. NEIGH_MLD_FRAME_LEN(n)). n: 1 .. NEIGH_MLD_MAX_RECORDS; the
 * groups must be IPv6 multicast. Returns the length or -EINVAL. Pure.
 */
int neigh_mld_report(uint8_t *frame, uint32_t size, const uint8_t mac[6], const struct addr *src,
		     enum neigh_mld_record type, const struct addr *groups, uint32_t n);

/*
 * When to send which report, for a set of groups that changes from time to
 * time (pure: time comes in as `now`, reports go out through a callback):
 *  - a change (groups joined or left) is announced at once with state-change
 *    records (TO_EX for a joined group, TO_IN for a left one) and repeated
 *    `robustness` - 1 more times, `interval` apart (RFC 3810 6.1: the
 *    Robustness Variable and the Unsolicited Report Interval, 9.1 and 9.11);
 *  - every `refresh`, the whole set is reported again (IS_EX). This stands
 *    in for answering queries, which never reach the control thread (the
 *    workers drop them): any refresh below the querier's Multicast Address
 *    Listening Interval (RFC 3810 9.4: 260 s with the default timers) keeps
 *    the groups alive in the routers and snooping switches.
 * Control thread only; no locks.
 */
struct neigh_mld;

/* 0 < interval, 0 < refresh, 1 <= robustness <= 7. NULL on bad arguments or out of memory. */
struct neigh_mld *neigh_mld_create(uint64_t interval_ns, uint64_t refresh_ns, unsigned robustness);
void neigh_mld_destroy(struct neigh_mld *m);

/*
 * The node's IPv6 addresses (whatever it answers solicitations for: its
 * address, its link-local address, announced VIPs) are addrs[0 .. n); the
 * groups are their solicited-node groups, duplicates merged, non-IPv6
 * entries skipped. Returns 1 when the set of groups changed (state-change
 * reports are then due at once), 0 when not, -ENOMEM (nothing changed).
 */
int neigh_mld_set(struct neigh_mld *m, const struct addr *addrs, uint32_t n, uint64_t now);

/* The number of groups in the current set. */
uint32_t neigh_mld_count(const struct neigh_mld *m);

/*
 * Send the reports that are due: report(ctx, type, groups, k) once per
 * report, k in 1 .. NEIGH_MLD_MAX_RECORDS (groups is only valid during the
 * call; its return value is ignored: a lost report is made up for by the
 * repetitions and the refresh). Returns how many reports were due.
 */
int neigh_mld_tick(struct neigh_mld *m, uint64_t now,
		   void (*report)(void *ctx, enum neigh_mld_record type, const struct addr *groups,
				  uint32_t k),
		   void *ctx);

#endif
