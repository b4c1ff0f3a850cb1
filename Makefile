# lbwatch build.
#   make            build/lbwatch and build/lbwatch-agent (release, -O2); B=DIR puts every output
#                   under DIR instead of build
#   make test       install missing packages, build with ASan+UBSan, run unit, fuzz-smoke and integration tests
#   make demo       install missing packages, build, run the loopback demo
#   make bench      benchmarks (release build): bench/*.c and bench/*.py (these run the release
#                   binary as $LBWATCH), printing ratios against baselines measured in the same run
#   make fuzz       build the libFuzzer targets (clang) and run each for FUZZ_SECONDS
#
# Sources are found by wildcard: every node/ raft/ probes/ alerting/ .c except the programs' mains
# (node/main.c, node/agentmain.c) goes into a static library that the binaries, the unit tests,
# the fuzzers and the benchmarks link. lbwatch-agent is linked --as-needed: it takes from the
# library and the system only what the agent uses.

B        ?= build
PKGS     := raft libuv openssl lmdb libmicrohttpd libcurl yaml-0.1 jansson libpcap zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CC       ?= cc
WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral -Wvla
VERSION  := 0.1.0
CSTD     := -std=c11 -D_GNU_SOURCE -DLBW_VERSION=\"$(VERSION)\"
CFLAGS_COMMON := $(CSTD) $(WARN) -I. $(PKG_CFLAGS) -MMD -MP
REL_CFLAGS  := $(CFLAGS_COMMON) -O2 -g -fstack-protector-strong -D_FORTIFY_SOURCE=2
ASAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
ASAN_CFLAGS := $(CFLAGS_COMMON) -O1 -g $(ASAN_FLAGS)
LDLIBS   := $(PKG_LIBS) -lpthread -lm

SRC      := $(sort $(wildcard node/*.c raft/*.c probes/*.c alerting/*.c))
MAIN     := node/main.c
AGENT_MAIN := node/agentmain.c
LIBSRC   := $(filter-out $(MAIN) $(AGENT_MAIN),$(SRC))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
SUPPORT_SRC := $(sort $(wildcard tests/support/*.c))
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_PY := $(sort $(wildcard bench/*.py))
TOOL_SRC := $(sort $(wildcard tests/tools/*.c))

REL_OBJ  := $(LIBSRC:%.c=$(B)/rel/%.o)
ASAN_OBJ := $(LIBSRC:%.c=$(B)/asan/%.o)
SUPPORT_OBJ := $(SUPPORT_SRC:%.c=$(B)/asan/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/asan/unit/%)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(B)/fuzz/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(B)/bench/%)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(B)/asan/tools/%)

FUZZ_SECONDS ?= 10

.SECONDARY:
.PHONY: all deps test unit fuzz fuzz-smoke integration demo bench clean check-deps
all: $(B)/lbwatch $(B)/lbwatch-agent

deps:
	@./scripts/install-deps

# --- release -------------------------------------------------------------------------------
$(B)/rel/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -c $< -o $@

$(B)/rel/liblbwatch.a: $(REL_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/lbwatch: $(B)/rel/node/main.o $(B)/rel/liblbwatch.a
	$(CC) -o $@ $^ $(LDLIBS)

$(B)/lbwatch-agent: $(B)/rel/node/agentmain.o $(B)/rel/liblbwatch.a
	$(CC) -Wl,--as-needed -o $@ $^ $(LDLIBS)

# --- sanitizer build (tests) ---------------------------------------------------------------
$(B)/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -c $< -o $@

$(B)/asan/liblbwatch.a: $(ASAN_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/asan/lbwatch: $(B)/asan/node/main.o $(B)/asan/liblbwatch.a
	$(CC) $(ASAN_FLAGS) -o $@ $^ $(LDLIBS)

$(B)/asan/lbwatch-agent: $(B)/asan/node/agentmain.o $(B)/asan/liblbwatch.a
	$(CC) $(ASAN_FLAGS) -Wl,--as-needed -o $@ $^ $(LDLIBS)

$(B)/asan/unit/%: tests/unit/%.c $(SUPPORT_OBJ) $(B)/asan/liblbwatch.a
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -o $@ $< $(SUPPORT_OBJ) $(B)/asan/liblbwatch.a $(LDLIBS) -lcmocka

# test tools: small programs the integration tests run (sanitizer build)
$(B)/asan/tools/%: tests/tools/%.c $(SUPPORT_OBJ) $(B)/asan/liblbwatch.a
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -o $@ $< $(SUPPORT_OBJ) $(B)/asan/liblbwatch.a $(LDLIBS)

# --- fuzzers (clang + libFuzzer) -----------------------------------------------------------
FUZZ_CFLAGS := $(CSTD) $(WARN) -I. $(PKG_CFLAGS) -O1 -g -fsanitize=fuzzer-no-link,address,undefined -MMD -MP
FUZZ_OBJ := $(LIBSRC:%.c=$(B)/fuzzobj/%.o)
$(B)/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -c $< -o $@

$(B)/fuzzobj/liblbwatch.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/fuzz/%: tests/fuzz/%.c $(B)/fuzzobj/liblbwatch.a
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(B)/fuzzobj/liblbwatch.a $(LDLIBS)

# --- benchmarks (release objects) ----------------------------------------------------------
$(B)/bench/%: bench/%.c $(B)/rel/liblbwatch.a $(B)/lbwatch
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -o $@ $< $(B)/rel/liblbwatch.a $(LDLIBS)

# --- entry points ---------------------------------------------------------------------------
unit: $(UNIT_BIN)
	@./scripts/run-unit $(UNIT_BIN)

fuzz: $(FUZZ_BIN)
	@B=$(B) ./scripts/run-fuzz $(FUZZ_SECONDS) $(FUZZ_BIN)

fuzz-smoke: $(FUZZ_BIN)
	@B=$(B) ./scripts/run-fuzz 5 $(FUZZ_BIN)

integration: $(B)/asan/lbwatch $(B)/asan/lbwatch-agent $(B)/lbwatch $(TOOL_BIN)
	@B=$(B) LBWATCH=$(abspath $(B))/asan/lbwatch LBWATCH_REL=$(abspath $(B))/lbwatch \
		LBWATCH_TOOLS=$(abspath $(B))/asan/tools ./scripts/run-integration

test: deps
	@$(MAKE) --no-print-directory -j2 $(B)/asan/lbwatch $(B)/asan/lbwatch-agent $(B)/lbwatch $(UNIT_BIN) $(FUZZ_BIN) $(TOOL_BIN)
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory fuzz-smoke
	@$(MAKE) --no-print-directory integration

demo: deps
	@$(MAKE) --no-print-directory -j2 $(B)/lbwatch
	./$(B)/lbwatch demo

bench: deps
	@$(MAKE) --no-print-directory -j2 $(B)/lbwatch $(B)/lbwatch-agent $(BENCH_BIN)
	@LBWATCH=$(abspath $(B))/lbwatch ./scripts/run-bench $(BENCH_BIN) $(BENCH_PY)

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
