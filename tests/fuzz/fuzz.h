/* fuzz: what every libFuzzer target of tests/fuzz shares (and replay.c, which drives them). */
#ifndef FULCRUM_TESTS_FUZZ_FUZZ_H
#define FULCRUM_TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A violated invariant is a bug: crash so that libFuzzer keeps the input. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

#endif
