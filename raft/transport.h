/* raft/transport: Raft peer messages over TCP on the caller's libevent loop. */
#ifndef FULCRUM_RAFT_TRANSPORT_H
#define FULCRUM_RAFT_TRANSPORT_H

/*
 * CONTRACT
 *
 * Threads: a transport lives on the caller's event_base and every function,
 * including raft_transport_free(), must be called on the thread that runs
 * that base's loop. Callbacks (on_message) run on that thread, from inside
 * event_base_loop(). Nothing blocks: connect, read and write are all
 * non-blocking; the only system calls made directly by an API function are
 * socket setup calls that do not wait.
 *
 * Connections: at most one established TCP connection per peer, carrying
 * messages both ways. Every node dials every peer it has an address for
 * whenever it has no connection to it, and accepts inbound connections from
 * nodes in its peer set. When both dials succeed, both ends keep the same
 * one, decided from facts both ends know (see docs/raft-transport.md,
 * "Duplicate connections"): a connection from a newer incarnation of the
 * peer wins; otherwise the connection dialed by the lower node id wins;
 * otherwise (same dialer) the newer one wins. The losing connection is
 * drained, not cut: what was already handed to it is still written and read,
 * then both ends half-close it.
 *
 * Handshake: the dialer sends HELLO {magic, transport version, codec version,
 * cluster id, its id, the id it expects to reach, its incarnation}; the
 * acceptor checks it and answers ACK (status 0 and its own identity) or a
 * refusal status, then closes. Only after the handshake do codec frames
 * (raft/codec.h) flow. A node not in the peer set, a wrong cluster id, a
 * wrong version or a misaddressed HELLO is refused and counted.
 *
 * Delivery: best effort, in order per connection (a message may overtake
 * an older one only while a duplicate is being drained). Raft tolerates loss,
 * duplication and reordering, so the transport never retransmits: a frame
 * handed to a connection that then breaks is lost (counted in bytes). Frames
 * wait in a bounded per-peer queue while there is no connection or the
 * socket is backed up; when the queue is full the OLDEST frames are dropped
 * (counted) to make room, because the newest message carries the newest
 * term, commit index and log position.
 *
 * Signals: libevent writes with writev(), which raises SIGPIPE on a reset
 * connection. raft_transport_new() therefore sets SIGPIPE to SIG_IGN if (and
 * only if) it still has the default disposition.
 *
 * Errors: negative errno values. -EINVAL bad argument; -ENOENT unknown peer;
 * -ENOSPC too many peers; -ENOMEM; codec errors from raft_codec_size() pass
 * through from raft_transport_send().
 */

#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

struct event_base;
struct raft_transport;

/* Upper bound on configured peers (voters + learners of RAFT_MAX_MEMBERS each, with room to spare).
 */
#define RAFT_TRANSPORT_MAX_PEERS 64

/* Handshake refusal reasons, sent in the ACK status byte. Values are part of the wire format. */
enum raft_transport_refusal {
	RAFT_TRANSPORT_OK = 0,
	RAFT_TRANSPORT_REFUSED_UNKNOWN = 1,	 /* sender is not in the acceptor's peer set */
	RAFT_TRANSPORT_REFUSED_CLUSTER = 2,	 /* cluster id differs */
	RAFT_TRANSPORT_REFUSED_VERSION = 3,	 /* transport or codec version not supported */
	RAFT_TRANSPORT_REFUSED_MISADDRESSED = 4, /* the HELLO was meant for another node id */
};

/* Tunables. raft_transport_opts_default() gives the values in brackets. */
struct raft_transport_opts {
	/* Seeds the backoff jitter PRNG (caller-chosen, one per node). */
	uint64_t seed;
	/* Identifies this run of the node in the handshake; 0 = derive from clock and pid [0]. */
	uint64_t incarnation;
	/* Reconnect delay: starts at min, doubles per failed attempt, capped at max [50, 2000]. */
	uint32_t backoff_min_ms;
	uint32_t backoff_max_ms;
	/* Per-peer queue bounds, in messages and encoded bytes, both >= 1 [4096, 16 MiB]. */
	uint32_t queue_max_msgs;
	size_t queue_max_bytes;
	/* Stop feeding a connection while its output buffer holds this much [256 KiB]. */
	size_t out_high_bytes;
	/* TCP connect plus handshake must finish within this [2000]. */
	uint32_t handshake_timeout_ms;
	/* Concurrent inbound handshakes; more are closed at once [64]. */
	uint32_t max_pending_inbound;
	/* TCP keepalive: idle seconds before probing (1 s apart, 3 probes), 0 = off [2]. */
	uint32_t keepalive_idle_s;
	/* TCP_USER_TIMEOUT: unacknowledged data older than this kills the connection; 0 = kernel
	 * default [5000]. */
	uint32_t tcp_user_timeout_ms;
};

/* Per-peer counters. "Sent" means handed to the connection (then lost only if it breaks). */
struct raft_transport_peer_stats {
	raft_id id;
	int connected;	     /* an established connection exists */
	int dialed_by_us;    /* ... and this node dialed it */
	uint32_t backoff_ms; /* delay of the pending reconnect timer, 0 if none */
	uint64_t queue_msgs; /* waiting in the queue (not yet handed to a connection) */
	uint64_t queue_bytes;
	uint64_t out_bytes; /* handed to the connection, not yet written (< high mark + 1 frame) */
	uint64_t msgs_sent, bytes_sent;
	uint64_t msgs_recv, bytes_recv;
	uint64_t drops_queue_full; /* frames evicted (oldest first) because the queue was full */
	uint64_t drops_nomem;	   /* messages not queued for lack of memory */
	uint64_t lost_bytes;	/* bytes handed to a connection that closed before writing them */
	uint64_t dials;		/* connection attempts */
	uint64_t dial_failures; /* attempts that failed before the handshake completed */
	uint64_t connects;	/* connections established (either direction) */
	uint64_t disconnects;	/* established connections lost (not counting duplicates closed) */
	uint64_t duplicates_closed; /* connections retired by the duplicate rule */
	uint64_t decode_errors;	    /* bad frames received (connection closed) */
	uint64_t misrouted;	    /* frames whose from/to did not match the connection (closed) */
	uint64_t refused_by_peer;   /* our HELLO was refused */
	uint8_t last_refusal;	    /* enum raft_transport_refusal of the last refusal */
	uint64_t peer_mismatch; /* the node at the address was not this peer, or not our cluster */
};

/* Transport-wide counters (inbound handshakes are not tied to a peer yet). */
struct raft_transport_stats {
	uint32_t peers;
	uint32_t conns_established;
	uint32_t conns_handshaking; /* inbound and outbound */
	uint32_t conns_draining;    /* duplicates being retired (flushing, then closed) */
	uint64_t accepted;	    /* inbound TCP connections accepted */
	uint64_t accept_errors;
	uint64_t refused_unknown;      /* HELLO from a node not in the peer set */
	uint64_t refused_cluster;      /* HELLO with another cluster id */
	uint64_t refused_version;      /* bad magic, transport or codec version, or kind */
	uint64_t refused_misaddressed; /* HELLO addressed to another node id */
	uint64_t refused_busy;	       /* too many pending inbound handshakes */
	uint64_t handshake_timeouts;
	uint64_t decode_errors; /* over all peers, including removed ones */
};

/* Fills *o with the defaults above and the given seed. Any thread. */
void raft_transport_opts_default(struct raft_transport_opts *o, uint64_t seed);

/*
 * Creates a transport for node self of cluster cluster_id on base, listening
 * on listen_addr ("1.2.3.4:port" or "[::1]:port", numeric only; port 0 picks
 * a free port, see raft_transport_local_addr; NULL: do not listen, dial
 * only). opts NULL means defaults with seed = self.
 *
 * on_message is called for every message received from a peer, on the loop
 * thread. The message and everything it points to are valid only during the
 * call (copy with raft_message_clone, or raft_step() which copies). It may
 * call raft_transport_send/set_peer/remove_peer, but not raft_transport_free.
 * Messages are checked before delivery: m->from is the peer of the
 * connection and m->to is self.
 *
 * Returns NULL on failure with a reason in err (bind failure, bad address,
 * bad options, out of memory). The caller owns the transport and frees it
 * with raft_transport_free() before freeing base.
 */
struct raft_transport *
raft_transport_new(struct event_base *base, raft_id self, uint64_t cluster_id,
		   const char *listen_addr, const struct raft_transport_opts *opts,
		   void (*on_message)(void *ctx, const struct raft_message *m), void *ctx,
		   char *err, size_t errlen);

/* Closes every connection, drops every queue, frees t. NULL is a no-op. Loop thread, not from
 * on_message. */
void raft_transport_free(struct raft_transport *t);

/*
 * Writes the address the listener is bound to ("127.0.0.1:40123") into buf.
 * -ENOENT if not listening; -ENOSPC if buf is too small.
 */
int raft_transport_local_addr(const struct raft_transport *t, char *buf, size_t len);

/*
 * Adds peer id, or changes its address (membership change at run time).
 * addr is "host:port" (numeric, as for listen_addr), or NULL for a peer this
 * node accepts but never dials (it then sends only over a connection the
 * peer opened). A new peer with an address is dialed at once. Changing the
 * address closes this node's outbound connection to the old one. Setting the
 * same address again changes nothing.
 * -EINVAL id 0, id == self, or addr unparsable or port 0; -ENOSPC
 * RAFT_TRANSPORT_MAX_PEERS reached; -ENOMEM.
 */
int raft_transport_set_peer(struct raft_transport *t, raft_id id, const char *addr);

/* Forgets peer id: closes its connections, drops its queue. Later HELLOs from it are refused.
 * -ENOENT. */
int raft_transport_remove_peer(struct raft_transport *t, raft_id id);

/*
 * Encodes m and queues it for m->to; never blocks, never calls on_message.
 * The frame is handed to the connection at once if it is established and
 * not backed up. m is not kept (the caller may free it on return).
 * Returns 0 when queued (older frames may have been dropped to make room,
 * see the stats), -EINVAL m->from is not self or m->to is self, -ENOENT m->to
 * is not a peer, -ENOMEM, or a codec error (-EMSGSIZE, -ENOMSG, -EINVAL).
 * A frame bigger than queue_max_bytes is queued only alone (everything
 * older is dropped first), so a large snapshot still gets through.
 */
int raft_transport_send(struct raft_transport *t, const struct raft_message *m);

/* Counters of peer id. -ENOENT if id is not a peer. */
int raft_transport_peer_stats(const struct raft_transport *t, raft_id id,
			      struct raft_transport_peer_stats *st);

/* Transport-wide counters. */
void raft_transport_stats(const struct raft_transport *t, struct raft_transport_stats *st);

/* Static name of a refusal reason ("unknown node", "wrong cluster", ...). */
const char *raft_transport_refusal_name(unsigned reason);

#endif
