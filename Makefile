# kavi — one Makefile, read top to bottom.
#
#   make deps     install the Debian packages kavi needs (only the missing ones)
#   make          build the three programs into build/$(VARIANT)/bin
#   make test     deps, then every test under AddressSanitizer + UBSan
#   make demo     deps, then the seed example end to end against the simulator
#   make bench    deps, then the benchmarks
#   make clean

VARIANT ?= debug
B       := build/$(VARIANT)
CC      ?= gcc

DEB_PACKAGES := build-essential pkg-config libzmq3-dev libmsgpack-dev \
                libcurl4-openssl-dev libjansson-dev libyaml-dev libcmocka-dev \
                libmicrohttpd-dev libgnutls28-dev uthash-dev openssl python3

# msgpack-c was renamed msgpack-c in 6.0; Debian bookworm ships "msgpack".
MSGPACK_PKG := $(shell pkg-config --exists msgpack-c 2>/dev/null && echo msgpack-c || echo msgpack)
PKGS        := libzmq $(MSGPACK_PKG) libcurl jansson yaml-0.1
PKG_CFLAGS  := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_LIBS   := $(shell pkg-config --libs cmocka libmicrohttpd gnutls 2>/dev/null)

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes
CFLAGS   ?= -std=gnu11 -O1 -g $(WARN)
CPPFLAGS += -I. $(PKG_CFLAGS)
ifeq ($(VARIANT),asan)
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
ifeq ($(VARIANT),release)
CFLAGS := -std=gnu11 -O2 -g $(WARN)
endif

# Every directory's non-main, non-test sources form one static library.
lib_src  = $(filter-out $(1)/main.c $(1)/test_%.c,$(wildcard $(1)/*.c))
obj      = $(patsubst %.c,$(B)/obj/%.o,$(1))

COMMON_OBJ  := $(call obj,$(call lib_src,common))
PROTO_OBJ   := $(call obj,$(call lib_src,proto))
WATCHER_OBJ := $(call obj,$(call lib_src,watcher))
PLANNER_OBJ := $(call obj,$(call lib_src,planner))
SYNCER_OBJ  := $(call obj,$(call lib_src,syncer))
AVISIM_OBJ  := $(call obj,$(call lib_src,tests/avisim))
K8SSIM_OBJ  := $(call obj,$(call lib_src,tests/k8ssim))
TESTKIT_OBJ := $(call obj,$(call lib_src,tests/kit))

LIBCOMMON  := $(B)/lib/libcommon.a
LIBPROTO   := $(B)/lib/libproto.a
LIBWATCHER := $(B)/lib/libwatcher.a
LIBPLANNER := $(B)/lib/libplanner.a
LIBSYNCER  := $(B)/lib/libsyncer.a
LIBAVISIM  := $(B)/lib/libavisim.a
LIBK8SSIM  := $(B)/lib/libk8ssim.a
LIBTESTKIT := $(B)/lib/libtestkit.a

PROGRAMS := $(B)/bin/kavi-watcher $(B)/bin/kavi-planner $(B)/bin/kavi-syncer $(B)/bin/avisim \
            $(if $(wildcard tests/k8ssim/main.c),$(B)/bin/k8ssim)

UNIT_TESTS  := $(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/test_*.c)) \
               $(patsubst tests/avisim/%.c,$(B)/tests/avisim_%,$(wildcard tests/avisim/test_*.c)) \
               $(patsubst tests/k8ssim/%.c,$(B)/tests/k8ssim_%,$(wildcard tests/k8ssim/test_*.c))
INTEG_TESTS := $(patsubst tests/integration/%.c,$(B)/tests/integration_%,$(wildcard tests/integration/test_*.c))
BENCHES     := $(patsubst tests/bench/%.c,$(B)/bench/%,$(wildcard tests/bench/bench_*.c))
BENCH_TOOLS := $(B)/bench/parse_floor

# Keep object files make considers intermediate (bench and test objects).
.SECONDARY:

.PHONY: all deps build test test-build test-run demo demo-run bench bench-run fuzz memcheck install clean format

all: $(PROGRAMS)

deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi

# The pkg-config lookups above run when make starts, so the targets that may
# install packages first re-enter make once the packages are there.
test: deps
	@$(MAKE) --no-print-directory VARIANT=asan test-run

test-build: $(PROGRAMS) $(UNIT_TESTS) $(INTEG_TESTS)

test-run: test-build
	@tests/run $(B)

demo: deps
	@$(MAKE) --no-print-directory VARIANT=release demo-run

demo-run: $(PROGRAMS)
	@tests/demo/run $(B)/bin

# The scale benchmark plots with gnuplot; only the bench needs it.
bench: deps
	@dpkg -s gnuplot-nox >/dev/null 2>&1 || { sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null; }
	@$(MAKE) --no-print-directory VARIANT=release bench-run

bench-run: $(PROGRAMS) $(BENCHES) $(BENCH_TOOLS)
	@for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done
	@echo "== tests/bench/scale_bench.py (the three processes at full scale)"
	@python3 tests/bench/scale_bench.py $(B)

# libFuzzer on every proto/ decoder (clang); FUZZ_SECONDS per harness.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang-14
fuzz: deps
	@dpkg -s clang-14 libclang-rt-14-dev >/dev/null 2>&1 || { sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends clang-14 libclang-rt-14-dev >/dev/null; }
	@mkdir -p build/fuzz
	$(FUZZ_CC) -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -I. $(PKG_CFLAGS) \
	  tests/fuzz/fuzz_proto.c proto/*.c common/error.c $(PKG_LIBS) -o build/fuzz/fuzz_proto
	@mkdir -p build/fuzz/corpus && cp tests/fuzz/corpus/* build/fuzz/corpus/
	build/fuzz/fuzz_proto -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=512 -max_len=65536 build/fuzz/corpus

install: $(PROGRAMS)
	install -d $(DESTDIR)/usr/local/bin
	install -m 0755 $(B)/bin/kavi-watcher $(B)/bin/kavi-planner $(B)/bin/kavi-syncer scripts/kavi-run $(DESTDIR)/usr/local/bin/

clean:
	rm -rf build

format:
	clang-format -i common/*.[ch] proto/*.[ch] watcher/*.[ch] planner/*.[ch] syncer/*.[ch] tests/*/*.[ch]

# --- compile and archive -------------------------------------------------------

# V=1 shows the full commands.
Q := $(if $(V),,@)

$(B)/obj/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(V),,echo "  CC    $<")
	$(Q)$(CC) $(CFLAGS) $(SAN) $(CPPFLAGS) -MMD -MP -c $< -o $@

$(LIBCOMMON): $(COMMON_OBJ)
$(LIBPROTO): $(PROTO_OBJ)
$(LIBWATCHER): $(WATCHER_OBJ)
$(LIBPLANNER): $(PLANNER_OBJ)
$(LIBSYNCER): $(SYNCER_OBJ)
$(LIBAVISIM): $(AVISIM_OBJ)
$(LIBK8SSIM): $(K8SSIM_OBJ)
$(LIBTESTKIT): $(TESTKIT_OBJ)
$(B)/lib/%.a:
	@mkdir -p $(@D)
	@rm -f $@
	$(Q)ar rcs $@ $^

BASE_LIBS := $(LIBCOMMON) $(LIBPROTO)

$(B)/bin/kavi-watcher: $(B)/obj/watcher/main.o $(LIBWATCHER) $(BASE_LIBS)
$(B)/bin/kavi-planner: $(B)/obj/planner/main.o $(LIBPLANNER) $(BASE_LIBS)
$(B)/bin/kavi-syncer:  $(B)/obj/syncer/main.o $(LIBSYNCER) $(BASE_LIBS)
$(B)/bin/kavi-%:
	@mkdir -p $(@D)
	@$(if $(V),,echo "  LINK  $@")
	$(Q)$(CC) $(CFLAGS) $(SAN) $^ $(PKG_LIBS) -lm -o $@

$(B)/bin/k8ssim: $(B)/obj/tests/k8ssim/main.o $(LIBK8SSIM)
$(B)/bin/avisim: $(B)/obj/tests/avisim/main.o $(LIBAVISIM)
$(B)/bin/avisim $(B)/bin/k8ssim:
	@mkdir -p $(@D)
	@$(if $(V),,echo "  LINK  $@")
	$(Q)$(CC) $(CFLAGS) $(SAN) $^ $(PKG_LIBS) $(TEST_LIBS) -lpthread -lm -o $@

# Tests link every library; symbols carry their module's prefix, so they do not clash.
ALL_LIBS := $(LIBTESTKIT) $(LIBWATCHER) $(LIBPLANNER) $(LIBSYNCER) $(LIBAVISIM) \
            $(if $(K8SSIM_OBJ),$(LIBK8SSIM)) $(LIBCOMMON) $(LIBPROTO)

$(B)/tests/avisim_%: $(B)/obj/tests/avisim/%.o $(ALL_LIBS)
	@mkdir -p $(@D)
	@$(if $(V),,echo "  LINK  $@")
	$(Q)$(CC) $(CFLAGS) $(SAN) $^ $(PKG_LIBS) $(TEST_LIBS) -lpthread -lm -o $@

$(B)/tests/k8ssim_%: $(B)/obj/tests/k8ssim/%.o $(ALL_LIBS)
	@mkdir -p $(@D)
	@$(if $(V),,echo "  LINK  $@")
	$(Q)$(CC) $(CFLAGS) $(SAN) $^ $(PKG_LIBS) $(TEST_LIBS) -lpthread -lm -o $@

$(B)/tests/integration_%: $(B)/obj/tests/integration/%.o $(ALL_LIBS)
	@mkdir -p $(@D)
	@$(if $(V),,echo "  LINK  $@")
	$(Q)$(CC) $(CFLAGS) $(SAN) $^ $(PKG_LIBS) $(TEST_LIBS) -lpthread -lm -o $@

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(ALL_LIBS)
	@mkdir -p $(@D)
	@$(if $(V),,echo "  LINK  $@")
	$(Q)$(CC) $(CFLAGS) $(SAN) $^ $(PKG_LIBS) $(TEST_LIBS) -lpthread -lm -o $@

$(B)/bench/%: $(B)/obj/tests/bench/%.o $(ALL_LIBS)
	@mkdir -p $(@D)
	@$(if $(V),,echo "  LINK  $@")
	$(Q)$(CC) $(CFLAGS) $(SAN) $^ $(PKG_LIBS) $(TEST_LIBS) -lpthread -lm -o $@

-include $(shell find build -name '*.d' 2>/dev/null)
