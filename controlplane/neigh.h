/* neigh: the node's neighbour (ARP) table — learned entries with aging, static entries, pending resolutions. */
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
 *  - REACHABLE: learned from an ARP packet; ages out `timeout` after the last
 *    confirmation.
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
	uint64_t confirmed; /* ns of the last ARP that confirmed it (REACHABLE) */
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
};

/*
 * What an ARP or ND packet taught: `a` is at `mac`. RFC 826's merge rule: an
 * existing entry is updated (refreshed, or its MAC replaced unless
 * NEIGH_LEARN_KEEP); a new entry is created only with NEIGH_LEARN_CREATE or
 * when the address is wanted. Static entries are not touched.
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
 * state when > 0. Unwanted entries that expire are forgotten silently.
 */
int neigh_tick(struct neigh_table *t, uint64_t now,
	       void (*request)(void *ctx, const struct addr *a), void *ctx);

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
 * discovery or fails RFC 4861's validity checks (7.1.1, 7.1.2: hop limit
 * 255, code 0, lengths, option lengths, a multicast target). Pure; any
 * thread.
 */
int neigh_nd_parse(const uint8_t *frame, const struct pkt_info *pi, struct addr *who,
		   uint8_t mac[6], unsigned *flags);

#endif
