# Fulcrum — one entry point. See README.md.
#   make            build everything (plain variant)
#   make test       install deps, build plain + ASan/UBSan, run every test twice
#   make run        install deps, build, run the default (see README.md)
#   make bench      benchmarks (release build), not part of make test
#   make fuzz       libFuzzer campaigns, FUZZ_TIME seconds each
#   make deps       install missing Debian packages (idempotent)
SHELL := /bin/bash
BUILD ?= build
ifeq ($(origin CC),default)
CC := gcc
endif
FUZZ_CC ?= clang
FUZZ_TIME ?= 60
SEEDS ?= 1000
FROM ?= 1

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wvla -Wformat=2
BASE_CFLAGS := -std=gnu11 -D_GNU_SOURCE -I. -g -MMD -MP $(WARN)
CFLAGS_plain := $(BASE_CFLAGS) -O2
CFLAGS_asan := $(BASE_CFLAGS) -O1 -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=all
CFLAGS_release := $(BASE_CFLAGS) -O3 -march=native -DNDEBUG
LDLIBS_plain := -levent -lm -lpthread
LDLIBS_asan := $(LDLIBS_plain)
LDLIBS_release := $(LDLIBS_plain)
TEST_LDLIBS := -lcmocka -lconfig -ljansson -lcurl

# DPDK: only the glue (dataplane/dpdk_*.c) and the daemon see its headers, as
# system headers (our warnings are not theirs). pkg-config runs in the sub-make
# that make test / make run start after make deps, so a fresh machine works.
DPDK_CFLAGS = $(shell pkg-config --cflags libdpdk 2>/dev/null | sed 's/-I/-isystem /g')
DPDK_LIBS = $(shell pkg-config --libs libdpdk 2>/dev/null)
DPDK_SRCS := $(wildcard dataplane/dpdk_*.c)
# fulcrumd: controlplane/main.c + controlplane/ev_*.c + the DPDK glue + the library.
FULCRUMD_SRCS := $(strip $(wildcard controlplane/main.c) $(wildcard controlplane/ev_*.c) $(DPDK_SRCS))

# The pure library: dataplane core (DPDK glue files are dataplane/dpdk_*.c and
# are not part of it), raft, and the controlplane files that need no event loop.
LIB_SRCS := $(filter-out dataplane/dpdk_%.c,$(wildcard dataplane/*.c)) \
	$(wildcard raft/*.c) \
	$(filter-out controlplane/main.c controlplane/ev_%.c,$(wildcard controlplane/*.c))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_NAMES := $(patsubst tests/unit/%.c,%,$(UNIT_SRCS))
SIM_SRCS := $(wildcard tests/sim/*.c)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
# Script tests (end-to-end labs, pcap golden tests): tests/e2e/NAME.sh and
# tests/golden/NAME.sh run once per variant, given that variant's fulcrumd.
SCRIPT_TESTS := $(wildcard tests/e2e/*.sh) $(wildcard tests/golden/*.sh)
SCRIPT_NAMES := $(foreach t,$(SCRIPT_TESTS),$(notdir $(patsubst %/,%,$(dir $(t))))_$(basename $(notdir $(t))))
TOOL_SRCS := $(wildcard tools/*.c)
TOOL_NAMES := $(patsubst tools/%.c,%,$(TOOL_SRCS))
BENCH_SRCS := $(wildcard tools/bench/bench_*.c)
BENCH_NAMES := $(patsubst tools/bench/%.c,%,$(BENCH_SRCS))
VARIANTS := plain asan release

.PHONY: all deps test run demo bench fuzz sim clean format check-format
all: $(BUILD)/plain/.built

define VARIANT_RULES
$(BUILD)/$(1)/obj/%.o: %.c
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_$(1)) -c $$< -o $$@

$(BUILD)/$(1)/libfulcrum.a: $$(patsubst %.c,$(BUILD)/$(1)/obj/%.o,$$(LIB_SRCS))
	@mkdir -p $$(@D)
	rm -f $$@ && ar rcs $$@ $$^

$(BUILD)/$(1)/tests/%: $(BUILD)/$(1)/obj/tests/unit/%.o $(BUILD)/$(1)/libfulcrum.a
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_$(1)) $$^ -o $$@ $$(TEST_LDLIBS) $$(LDLIBS_$(1))

# Corpus replay: the fuzz target built with the normal compiler and a main()
# that feeds it every file of tests/fuzz/corpus/NAME.
$(BUILD)/$(1)/tests/replay_%: $(BUILD)/$(1)/obj/tests/fuzz/fuzz_%.o $(BUILD)/$(1)/obj/tests/fuzz/replay.o $(BUILD)/$(1)/libfulcrum.a
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_$(1)) $$^ -o $$@ -lconfig -ljansson -lcurl $$(LDLIBS_$(1))

$(BUILD)/$(1)/tests/raftsim: $$(patsubst %.c,$(BUILD)/$(1)/obj/%.o,$$(SIM_SRCS)) $(BUILD)/$(1)/libfulcrum.a
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_$(1)) $$^ -o $$@ $$(LDLIBS_$(1))

$(BUILD)/$(1)/bin/%: $(BUILD)/$(1)/obj/tools/%.o $(BUILD)/$(1)/libfulcrum.a
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_$(1)) $$^ -o $$@ $$(LDLIBS_$(1)) -lconfig -lcurl -ljansson

$(BUILD)/$(1)/obj/dataplane/dpdk_%.o: dataplane/dpdk_%.c
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_$(1)) $$(DPDK_CFLAGS) -c $$< -o $$@

$(BUILD)/$(1)/obj/controlplane/main.o: controlplane/main.c
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_$(1)) $$(DPDK_CFLAGS) -c $$< -o $$@

$(BUILD)/$(1)/bin/fulcrumd: $$(patsubst %.c,$(BUILD)/$(1)/obj/%.o,$$(FULCRUMD_SRCS)) $(BUILD)/$(1)/libfulcrum.a
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_$(1)) $$^ -o $$@ $$(DPDK_LIBS) -lconfig -ljansson $$(LDLIBS_$(1))

$(BUILD)/$(1)/bench/%: $(BUILD)/$(1)/obj/tools/bench/%.o $(BUILD)/$(1)/libfulcrum.a
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_$(1)) $$^ -o $$@ $$(LDLIBS_$(1))

# Benchmarks that drive real DPDK ports: tools/bench/bench_dpdk_*.c + the glue.
$(BUILD)/$(1)/obj/tools/bench/bench_dpdk_%.o: tools/bench/bench_dpdk_%.c
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_$(1)) $$(DPDK_CFLAGS) -c $$< -o $$@

$(BUILD)/$(1)/bench/bench_dpdk_%: $(BUILD)/$(1)/obj/tools/bench/bench_dpdk_%.o $$(patsubst %.c,$(BUILD)/$(1)/obj/%.o,$$(DPDK_SRCS)) $(BUILD)/$(1)/libfulcrum.a
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_$(1)) $$^ -o $$@ $$(DPDK_LIBS) $$(LDLIBS_$(1))

# A wrapper per script test and variant: runs the script with this variant's binaries.
$(BUILD)/$(1)/tests/e2e_%: tests/e2e/%.sh $(BUILD)/$(1)/bin/fulcrumd $(BUILD)/$(1)/bin/fulcrumctl
	@mkdir -p $$(@D)
	printf '#!/bin/sh\nexec %s %s\n' "$$(abspath $$<)" "$$(abspath $(BUILD)/$(1)/bin)" > $$@ && chmod +x $$@

$(BUILD)/$(1)/tests/golden_%: tests/golden/%.sh $(BUILD)/$(1)/bin/fulcrumd $(BUILD)/$(1)/bin/pcapgen $(BUILD)/$(1)/bin/pcapcheck
	@mkdir -p $$(@D)
	printf '#!/bin/sh\nexec %s %s\n' "$$(abspath $$<)" "$$(abspath $(BUILD)/$(1)/bin)" > $$@ && chmod +x $$@

$(1)_TESTS := $$(addprefix $(BUILD)/$(1)/tests/,$$(UNIT_NAMES) $$(addprefix replay_,$$(FUZZ_NAMES)) \
	$$(if $$(SIM_SRCS),raftsim)) $$(addprefix $(BUILD)/$(1)/tests/,$$(SCRIPT_NAMES))
$(1)_BINS := $$(addprefix $(BUILD)/$(1)/bin/,$$(TOOL_NAMES) $$(if $$(FULCRUMD_SRCS),fulcrumd))
$(1)_BENCHES := $$(addprefix $(BUILD)/$(1)/bench/,$$(BENCH_NAMES))

$(BUILD)/$(1)/.built: $$($(1)_TESTS) $$($(1)_BINS)
	@touch $$@
endef
$(foreach v,$(VARIANTS),$(eval $(call VARIANT_RULES,$(v))))

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
.SECONDARY:

deps:
	@tools/deps.sh

# Every test runs twice: plain and under ASan+UBSan. The runner prints the
# summary line "N passed, N failed[, N skipped]" last.
test: deps
	$(MAKE) $(BUILD)/plain/.built $(BUILD)/asan/.built
	@tools/run-tests.sh $(plain_TESTS) $(asan_TESTS)

run: deps
	$(MAKE) $(BUILD)/plain/.built
	@tools/run.sh

# The forwarding-core demonstration (Maglev spread and disruption, no packets).
demo: $(BUILD)/plain/bin/fulcrum_demo
	$(BUILD)/plain/bin/fulcrum_demo

# Compiled benchmarks, then script benchmarks (tools/bench/*.sh, e.g. the lab),
# which find the release binaries through FULCRUM_BIN. BENCH=name runs one.
BENCH_SCRIPTS := $(wildcard tools/bench/*.sh)
bench: deps
	$(MAKE) $(release_BENCHES) $(release_BINS)
	@FULCRUM_BIN=$(abspath $(BUILD)/release/bin) tools/bench.sh \
		$(if $(BENCH),$(filter %/$(BENCH) %/$(BENCH).sh,$(release_BENCHES) $(BENCH_SCRIPTS)),$(release_BENCHES) $(BENCH_SCRIPTS))

sim: $(BUILD)/plain/tests/raftsim
	$(BUILD)/plain/tests/raftsim --seeds $(SEEDS) --from $(FROM)

$(BUILD)/fuzz/%: tests/fuzz/fuzz_%.c $(LIB_SRCS)
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=gnu11 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=all $< $(LIB_SRCS) -o $@ -lconfig -ljansson -lcurl -levent -lm -lpthread

fuzz: deps $(addprefix $(BUILD)/fuzz/,$(FUZZ_NAMES))
	@for n in $(FUZZ_NAMES); do \
		mkdir -p $(BUILD)/fuzz/corpus-$$n; \
		echo "== fuzz $$n for $(FUZZ_TIME)s (new inputs in $(BUILD)/fuzz/corpus-$$n)"; \
		$(BUILD)/fuzz/$$n -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
			$(BUILD)/fuzz/corpus-$$n tests/fuzz/corpus/$$n || exit 1; \
	done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
