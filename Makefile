# One Makefile for the whole tree. Output goes to $(BUILD) only:
#   make            build everything into build/bin/
#   make test       build, then run the whole suite (unit, integration, e2e when root)
#   make asan       the same suite built with -fsanitize=address,undefined (build/asan/)
#   make tsan       the same suite built with -fsanitize=thread (build/tsan/; tests/tsan.supp)
#   make coverage   the suite built with --coverage; gcovr report under build/coverage/
#   make format     clang-format every C source in place
#   make fuzz       every libFuzzer target (clang) for FUZZ_SECONDS each (tests/fuzz/README.md)
#   make image      container images of ztunnel and the toolkit (scripts/image.sh; podman)
#   make plots      redraw bench/plots/*.png from the committed benchmark JSON (gnuplot)
# Missing Debian packages are installed by scripts/deps.sh before the first compile.

BUILD   ?= build
CC      ?= cc
# One compile per core unless -j was given (-j1 for one at a time); a sub-make shares its
# parent's jobs.
ifeq ($(MAKELEVEL),0)
MAKEFLAGS += -j$(shell nproc)
endif
WERROR  ?= 1
SAN     ?=
COV     ?=
V       ?=

Q := $(if $(V),,@)
.DEFAULT_GOAL := all
PKGS := openssl libnghttp2 libprotobuf-c yaml-0.1 jansson libnl-3.0 libnl-route-3.0 libmicrohttpd ldns

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
	-Wvla -Wimplicit-fallthrough -Wno-missing-field-initializers
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE -g -MMD -MP $(WARN) $(if $(filter 1,$(WERROR)),-Werror)
ifeq ($(SAN),fuzz)
CFLAGS_ALL += -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=all
LDFLAGS_ALL += -fsanitize=address,undefined
else ifeq ($(SAN),thread)
CFLAGS_ALL += -O1 -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS_ALL += -fsanitize=thread
else ifneq ($(SAN),)
CFLAGS_ALL += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS_ALL += -fsanitize=address,undefined
else ifneq ($(COV),)
CFLAGS_ALL += -O0 --coverage
LDFLAGS_ALL += --coverage
else
CFLAGS_ALL += -O2 -D_FORTIFY_SOURCE=2 -fstack-protector-strong
endif
CFLAGS_ALL += -I. -Iztunnel -I$(BUILD)/gen $(CFLAGS)
LDFLAGS_ALL += $(LDFLAGS)

# pkg-config flags, computed once per build directory after dependencies are present.
DEPS_MK := $(BUILD)/deps.mk
ifeq ($(filter format clean,$(MAKECMDGOALS)),)
include $(DEPS_MK)
endif
$(DEPS_MK): scripts/deps.sh
	@mkdir -p $(@D)
	@scripts/deps.sh --check 2>/dev/null || scripts/deps.sh
	@printf 'PKG_CFLAGS := %s\nPKG_LIBS := %s\nCHECK_CFLAGS := %s\nCHECK_LIBS := %s\n' \
		"$$(pkg-config --cflags $(PKGS))" "$$(pkg-config --libs $(PKGS)) -lhttp_parser" \
		"$$(pkg-config --cflags check)" "$$(pkg-config --libs check)" > $@

# ---- libraries, one per layer (README "Module map"; `make layers` checks the includes) ------
# runtime < protocol (+ generated protobuf code) < hbone < daemon. Every ztunnel/<dir>/*.c is in
# exactly one of them; a folder not named below (state, xds, cert, telemetry, admin, config,
# proxy, inpod, dns, app, ...) belongs to the daemon. Only ztunnel/main.c stays out.
LAYER_DIRS := runtime protocol hbone
PROTOS    := $(shell find ztunnel/proto -name '*.proto' 2>/dev/null | sort)
PB_SRCS   := $(patsubst ztunnel/proto/%.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
PB_HDRS   := $(PB_SRCS:.c=.h)
# Generated sources and objects are kept, never treated as intermediate.
.SECONDARY:
obj_of = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
RUNTIME_OBJS  := $(call obj_of,$(wildcard ztunnel/runtime/*.c))
PROTOCOL_OBJS := $(call obj_of,$(wildcard ztunnel/protocol/*.c)) $(PB_SRCS:.c=.o)
HBONE_OBJS    := $(call obj_of,$(wildcard ztunnel/hbone/*.c))
DAEMON_OBJS   := $(call obj_of,$(filter-out $(addprefix ztunnel/,$(addsuffix /%,$(LAYER_DIRS))),\
                   $(wildcard ztunnel/*/*.c)))
LIBRUNTIME  := $(BUILD)/lib/libzt-runtime.a
LIBPROTOCOL := $(BUILD)/lib/libzt-protocol.a
LIBHBONE    := $(BUILD)/lib/libzt-hbone.a
LIBDAEMON   := $(BUILD)/lib/libzt-daemon.a
# fake-istiod's modules (all but its main.c), linked into the tests as well.
FI_SRCS   := $(filter-out fake-istiod/main.c,$(wildcard fake-istiod/*.c))
FI_OBJS   := $(patsubst %.c,$(BUILD)/obj/%.o,$(FI_SRCS))
LIBFI     := $(BUILD)/lib/libfakeistiod.a
# What each kind of program links, highest layer first. Tools (fake-istiod, sim) never link
# the daemon; the tests link everything.
TOOL_LIBS   := $(LIBHBONE) $(LIBPROTOCOL) $(LIBRUNTIME)
DAEMON_LIBS := $(LIBDAEMON) $(TOOL_LIBS)
TEST_LIBS   := $(LIBFI) $(DAEMON_LIBS)

# ---- programs ---------------------------------------------------------------------------
# ztunnel: ztunnel/main.c over the daemon's libraries.
PROGRAMS := ztunnel
ztunnel_SRCS := ztunnel/main.c
ztunnel_LIBS := $(DAEMON_LIBS)
# fake-istiod: fake-istiod/main.c over its modules.
fake_istiod_SRCS := $(wildcard fake-istiod/main.c)
ifneq ($(fake_istiod_SRCS),)
PROGRAMS += fake-istiod
fake_istiod_LIBS := $(LIBFI) $(TOOL_LIBS)
endif
# sim: one program per folder, sim/NAME/*.c -> build/bin/NAME.
SIM_TOOLS := $(notdir $(patsubst %/,%,$(dir $(wildcard sim/*/*.c))))
$(foreach t,$(SIM_TOOLS),$(eval $(subst -,_,$(t))_SRCS := $(wildcard sim/$(t)/*.c)))
$(foreach t,$(SIM_TOOLS),$(eval $(subst -,_,$(t))_LIBS := $(TOOL_LIBS)))
# sim-waypoint is an xDS and CA client like the daemon: it also links the services layer.
sim_waypoint_LIBS := $(LIBDAEMON) $(TOOL_LIBS)
PROGRAMS += $(sort $(SIM_TOOLS))
BINS := $(addprefix $(BUILD)/bin/,$(PROGRAMS))

# ---- tests ------------------------------------------------------------------------------
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(UNIT_SRCS))
# Pure modules of the sim tools that have unit tests of their own.
UNIT_OBJS += $(BUILD)/obj/sim/sim-waypoint/authz.o
UNIT_BIN  := $(BUILD)/tests/unit
SUITES    := $(patsubst tests/unit/test_%.c,%,$(wildcard tests/unit/test_*.c))
ITEST_SRCS := $(wildcard tests/integration/*.c)
ITEST_BINS := $(patsubst tests/integration/%.c,$(BUILD)/tests/%,$(ITEST_SRCS))
# Benchmark programs: bench/NAME.c -> build/bench/NAME, over the same libraries.
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))

# Fuzz targets: tests/fuzz/fuzz_NAME.c. Each links twice: with the replay driver (normal
# compiler, part of `all`; `make test` feeds it every corpus file) and, under `make fuzz`,
# with libFuzzer (clang, build/fuzz/fuzz/NAME).
FUZZ_SRCS   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES  := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
REPLAY_BINS := $(patsubst %,$(BUILD)/tests/fuzz/replay_%,$(FUZZ_NAMES))
FUZZ_BINS   := $(patsubst %,$(BUILD)/fuzz/%,$(FUZZ_NAMES))
FUZZ_SECONDS ?= 60

.PHONY: all test asan tsan asan-build tsan-build coverage format clean demo layers image plots \
	fuzz fuzz-bins
all: $(BINS) $(UNIT_BIN) $(ITEST_BINS) $(BENCH_BINS) $(REPLAY_BINS) $(BUILD)/tests/fuzz/mkseeds

$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: ztunnel/proto/%.proto | $(DEPS_MK)
	@mkdir -p $(BUILD)/gen
	$(Q)protoc-c --proto_path=ztunnel/proto --c_out=$(BUILD)/gen $<

# The commit goes into the one file that prints it (ztunnel version).
GIT_REVISION := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
$(BUILD)/obj/ztunnel/main.o: CFLAGS_ALL += -DZT_GIT_REVISION='"$(GIT_REVISION)"'

$(BUILD)/obj/%.o: %.c | $(DEPS_MK) $(PB_HDRS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) $(PKG_CFLAGS) -c -o $@ $<

$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(filter-out -Wmissing-prototypes -Wshadow,$(CFLAGS_ALL)) $(PKG_CFLAGS) -c -o $@ $<

$(LIBRUNTIME): $(RUNTIME_OBJS)
$(LIBPROTOCOL): $(PROTOCOL_OBJS)
$(LIBHBONE): $(HBONE_OBJS)
$(LIBDAEMON): $(DAEMON_OBJS)
$(LIBFI): $(FI_OBJS)
$(LIBRUNTIME) $(LIBPROTOCOL) $(LIBHBONE) $(LIBDAEMON) $(LIBFI):
	@mkdir -p $(@D)
	$(Q)rm -f $@ && ar rcs $@ $^

define PROGRAM_RULE
$(BUILD)/bin/$(1): $(patsubst %.c,$(BUILD)/obj/%.o,$($(subst -,_,$(1))_SRCS)) $($(subst -,_,$(1))_LIBS)
	@mkdir -p $$(@D)
	@$$(if $(Q),echo "  LD      $$@")
	$(Q)$$(CC) $(LDFLAGS_ALL) -o $$@ $$^ $$(PKG_LIBS) -lpthread
endef
$(foreach p,$(PROGRAMS),$(eval $(call PROGRAM_RULE,$(p))))

$(BUILD)/tests/suites.h: $(UNIT_SRCS) Makefile
	@mkdir -p $(@D)
	@printf '%s\n' $(foreach s,$(SUITES),"SUITE($(s))") > $@

$(BUILD)/obj/tests/unit/%.o: tests/unit/%.c $(BUILD)/tests/suites.h | $(DEPS_MK) $(PB_HDRS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) -I$(BUILD)/tests $(PKG_CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

$(UNIT_BIN): $(UNIT_OBJS) $(TEST_LIBS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) $(CHECK_LIBS) -lpthread

$(BUILD)/tests/%: $(BUILD)/obj/tests/integration/%.o $(TEST_LIBS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) -lpthread

$(BUILD)/tests/fuzz/replay_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/obj/tests/fuzz/replay.o $(TEST_LIBS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(PKG_LIBS) -lpthread

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(TEST_LIBS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) -lpthread

$(BUILD)/fuzz/%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(TEST_LIBS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -fsanitize=fuzzer -o $@ $(filter %.o,$^) $(filter %.a,$^) $(PKG_LIBS) -lpthread
# Targets over sim-waypoint's pure modules link those objects too.
$(BUILD)/fuzz/waypoint_h2 $(BUILD)/tests/fuzz/replay_waypoint_h2: \
	$(BUILD)/obj/sim/sim-waypoint/h2l7.o $(BUILD)/obj/sim/sim-waypoint/authz.o
$(BUILD)/fuzz/waypoint_authz $(BUILD)/tests/fuzz/replay_waypoint_authz: \
	$(BUILD)/obj/sim/sim-waypoint/authz.o
$(BUILD)/fuzz/waypoint_http1 $(BUILD)/tests/fuzz/replay_waypoint_http1: \
	$(BUILD)/obj/sim/sim-waypoint/h1head.o $(BUILD)/obj/sim/sim-waypoint/authz.o

# The seed writer for the binary corpora (tests/fuzz/mkseeds.c), built with the rest.
$(BUILD)/tests/fuzz/mkseeds: $(BUILD)/obj/tests/fuzz/mkseeds.o $(TEST_LIBS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) -lpthread

fuzz-bins: $(FUZZ_BINS)

fuzz:
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang SAN=fuzz WERROR=0 fuzz-bins
	@tests/fuzz/campaign.sh build/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

test: all layers
	@tests/run.sh $(BUILD)

layers:
	@scripts/layers.sh

# The sanitizer builds; asan-build and tsan-build only compile them (.ci/run does so while the
# plain suite runs).
ASAN_VARS := BUILD=build/asan SAN=1
TSAN_VARS := BUILD=build/tsan SAN=thread
asan:
	@$(MAKE) --no-print-directory $(ASAN_VARS) test
asan-build:
	@$(MAKE) --no-print-directory $(ASAN_VARS) all

# Every process of the suite (the unit runner, ztunnel, the tools) reports races and exits 66.
tsan:
# Check's per-case timeouts stretch as the fixture's deadlines do (FX_SLOW).
	@TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
		CK_TIMEOUT_MULTIPLIER=8 $(MAKE) --no-print-directory $(TSAN_VARS) test
tsan-build:
	@$(MAKE) --no-print-directory $(TSAN_VARS) all

coverage:
	@find build/cov -name '*.gcda' -delete 2>/dev/null || true
	@$(MAKE) --no-print-directory BUILD=build/cov COV=1 test
	@mkdir -p build/coverage
	@gcovr --root . --object-directory build/cov/obj --filter 'ztunnel/' --filter 'fake-istiod/' \
		--filter 'sim/' --html-details build/coverage/index.html --print-summary \
		| tail -3
	@scripts/coverage-layers.sh build/cov/obj

plots:
	@scripts/deps.sh --check --bench 2>/dev/null || scripts/deps.sh --bench
	@python3 bench/lib/plots.py bench/plots

demo: all
	@netns-lab/demo.sh

image: $(BINS)
	@BUILD_DIR=$(BUILD) scripts/image.sh --latest

format:
	clang-format -i $$(find ztunnel fake-istiod sim tests -name '*.[ch]')

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
