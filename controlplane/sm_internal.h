/* sm_internal: the state's layout and checks shared by sm.c and sm_codec.c (not an API). */
#ifndef FULCRUM_CONTROLPLANE_SM_INTERNAL_H
#define FULCRUM_CONTROLPLANE_SM_INTERNAL_H

#include <stdint.h>

#include "controlplane/sm.h"

/*
 * Every array is kept in one canonical order (services by name, backends by
 * uid, leases and members by id), so the snapshot of a state is a function
 * of its contents only and the digest can be compared across nodes.
 */
struct sm_state {
	uint64_t revision;
	uint8_t seed_set;
	uint64_t seed;
	uint32_t n_services, cap_services;
	struct sm_service **services; /* by name */
	uint32_t n_leases, cap_leases;
	struct sm_lease *leases; /* by id */
	uint32_t n_members, cap_members;
	struct sm_member *members; /* by id */
};

/* Free the contents of st (not st itself) and zero it. */
void sm_state_clear(struct sm_state *st);

/*
 * Check a service definition on its own (names, ranges, prime table size,
 * health spec). *def's table_size 0 is resolved to MAGLEV_DEFAULT_SIZE first
 * when resolve is 1. Returns the code and fills err.
 */
enum sm_errcode sm_check_def(struct sm_service_def *def, int resolve, struct sm_err *err);

/* Check one backend against its service's definition (family, port rules, weight). */
enum sm_errcode sm_check_backend(const struct sm_service_def *def, const struct sm_backend *b,
				 struct sm_err *err);

/*
 * Validate cmd against st and, when valid, apply it at index (no revision
 * change: the caller owns that). Returns 0 (err says whether it took
 * effect) or -ENOMEM (st unchanged). sm_apply and sm_restore both use it,
 * so a restored state obeys exactly the rules the log does.
 */
int sm_apply_cmd(struct sm_state *st, uint64_t index, const struct sm_cmd *c, struct sm_err *err,
		 struct sm_result *res);

/* 1 if s is a valid service name (NUL within SM_NAME_MAX, [A-Za-z0-9._-]{1,63}). */
int sm_name_ok(const char *s);

#endif
