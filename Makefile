# berth — build, set-up, tests.
#
#   make run     install missing Debian packages, build, create the router's
#                system user berth, an admin key when the credentials file
#                has none, start berthd + router with a demo endpoint,
#                print how to call it
#   make check   install what tests need, build with -Werror and ASan/UBSan,
#                run unit tests, each fuzz target briefly, integration tests,
#                then berthd's threads under ThreadSanitizer (make tsan-check)
#   make bench   router / pipeline / start-up figures (see tests/bench)
#   make fuzz    libFuzzer targets (tests/fuzz), FUZZ_SECONDS each (default 600)
#
# Variables: SAN=1 builds with sanitizers into build-san/ (make check does).
# FUZZ=1 builds the library objects with clang for libFuzzer into build-fuzz/.
# TSAN=1 builds with ThreadSanitizer into build-tsan/ (make tsan-check does).

CC       ?= gcc
# parallel compiles in make check and the fuzz and TSan builds
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
SAN      ?= 0
FUZZ     ?= 0
TSAN     ?= 0
ifeq ($(FUZZ),1)
CC       := clang
BUILD    ?= build-fuzz
# clang flags libseccomp's SCMP_A0() macro (positional initializer of a
# 4-field struct) under -Wextra; gcc does not
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
            -Wno-missing-field-initializers
OPT      := -O1
else ifeq ($(TSAN),1)
BUILD    ?= build-tsan
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
OPT      := -O1
else ifeq ($(SAN),1)
BUILD    ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT      := -O1
else
BUILD    ?= build
SANFLAGS :=
OPT      := -O2
endif

PKGS      := yajl libnghttp2 libarchive
CPPFLAGS  += -D_GNU_SOURCE
CFLAGS    += -std=c11 $(OPT) -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
             -Wno-unused-parameter $(SANFLAGS) -pthread
LDFLAGS   += $(SANFLAGS) -pthread

# Debian packages: what it takes to build, to run, and to test.
DEPS_BUILD := gcc make pkg-config libyajl-dev libnghttp2-dev libhttp-parser-dev \
              libarchive-dev libcurl4-openssl-dev libseccomp-dev libcap-dev libcmocka-dev libssl-dev libpcre2-dev \
              libyaml-dev libisal-dev liburing-dev
DEPS_RUN   := liburing2 runc skopeo iproute2 util-linux passwd curl ca-certificates python3-boto3 nghttp2-client
DEPS_TEST  := python3 python3-boto3 python3-pytest python3-hpack awscli nghttp2-client umoci zstd openssl docker-registry apache2-utils
DEPS_BENCH := wrk nginx-light nghttp2-proxy nghttp2-client
DEPS_IMAGES := mmdebstrap umoci
# clang's -fsanitize=fuzzer runtime (libclang_rt.fuzzer) is in libclang-rt-14-dev
DEPS_FUZZ  := clang libclang-rt-14-dev

# berthd's layers, lowest first (docs/design.md draws them; `make layers`
# checks that each folder uses only those before it).
BERTHD_LAYERS := state limits artifact image container mme runtime access api
BERTHD_DIRS   := $(addprefix orchestrator/,$(BERTHD_LAYERS)) orchestrator

# The HTTP/1.1 response parser and client need -lhttp_parser: they are an
# archive of their own, linked by berthd and the router, never by the shim.
COMMON_HTTP_SRC := common/http_response.c common/http_client.c
COMMON_SRC := $(filter-out $(COMMON_HTTP_SRC),$(wildcard common/*.c))
ORCH_LIB   := $(foreach d,$(BERTHD_LAYERS),$(wildcard orchestrator/$(d)/*.c)) orchestrator/config.c
CLI_SRC    := $(wildcard cli/*.c)
SHIM_SRC   := $(wildcard shim/*.c)
ROUTER_SRC := $(wildcard router/*.c)
ROUTER_LIB := $(filter-out router/main.c,$(ROUTER_SRC))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)

# Each binary sees common/ and its own folders only, so a header name is
# never ambiguous between binaries (router/mme.h vs orchestrator/mme/mme.h).
INC_COMMON := -Icommon
INC_BERTHD := -Icommon $(addprefix -I,$(BERTHD_DIRS))
INC_ROUTER := -Icommon -Irouter
INC_SHIM   := -Icommon -Ishim
INC_CLI    := -Icommon -Icli

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

BINS := $(BUILD)/berthd $(BUILD)/berth $(BUILD)/berth-shim $(BUILD)/berth-router
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

.PHONY: all deps deps-test deps-bench run stop check unit integration bench clean install echo-image router-user
.PHONY: framework-images layers deps-fuzz fuzz fuzz-check fuzz-build tsan-check

all: $(BINS) $(BUILD)/echo-serve

$(BUILD)/obj/common/%.o:       INC := $(INC_COMMON)
$(BUILD)/obj/orchestrator/%.o: INC := $(INC_BERTHD)
$(BUILD)/obj/router/%.o:       INC := $(INC_ROUTER)
$(BUILD)/obj/shim/%.o:         INC := $(INC_SHIM)
$(BUILD)/obj/cli/%.o:          INC := $(INC_CLI)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(INC) $(PKG_CFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

# Archives are made anew each time: `ar rcs` into an existing archive would
# keep the objects of moved or deleted files.
$(BUILD)/libcommon.a: $(call obj,$(COMMON_SRC))
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/libcommon_http.a: $(call obj,$(COMMON_HTTP_SRC))
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/liborch.a: $(call obj,$(ORCH_LIB))
	@rm -f $@
	ar rcs $@ $^
$(BUILD)/librouter.a: $(call obj,$(ROUTER_LIB))
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/berthd: $(call obj,orchestrator/main.c) $(BUILD)/liborch.a $(BUILD)/libcommon_http.a $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ -lyajl -larchive -lcrypto -lcurl -lhttp_parser -lpcre2-8 -lyaml
$(BUILD)/berth: $(call obj,$(CLI_SRC)) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ -lyajl -lcurl
# Not sanitized, the shim (one per container) is linked statically against
# glibc and yajl's libyajl_s.a: it maps no shared libraries, so its resident
# set stays under 1 MiB (make bench reports it). The sanitizers' runtimes
# cannot be linked statically.
ifeq ($(SANFLAGS),)
SHIM_LIBS := -static -l:libyajl_s.a
else
SHIM_LIBS := -lyajl
endif
$(BUILD)/berth-shim: $(call obj,$(SHIM_SRC)) $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ $(SHIM_LIBS)
$(BUILD)/berth-router: $(call obj,router/main.c) $(BUILD)/librouter.a $(BUILD)/libcommon_http.a $(BUILD)/libcommon.a
	$(CC) $(LDFLAGS) -o $@ $^ -lyajl -lnghttp2 -lhttp_parser -lseccomp -lcap -lssl -lcrypto -lisal -luring

# The example serving container: a static binary, never sanitized (it runs
# alone inside a bare rootfs).
$(BUILD)/echo-serve: examples/echo/serve.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -static -o $@ $<

# Unit tests: test_router_* see the router's headers, test_shim_* the shim's,
# the others berthd's. Header dependencies are tracked (-MMD) like objects'.
unit_inc = $(if $(filter test_router_%,$(1)),$(INC_ROUTER),$(if $(filter test_shim_%,$(1)),$(INC_SHIM),$(INC_BERTHD)))
SHIM_LIB_OBJS := $(call obj,$(filter-out shim/main.c,$(SHIM_SRC)))
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/liborch.a $(BUILD)/librouter.a $(BUILD)/libcommon_http.a $(BUILD)/libcommon.a $(SHIM_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(call unit_inc,$*) $(PKG_CFLAGS) $(CFLAGS) -MMD -MP -o $@ $< \
		$(if $(filter test_shim_%,$*),$(SHIM_LIB_OBJS)) $(BUILD)/liborch.a $(BUILD)/librouter.a \
		$(BUILD)/libcommon_http.a $(BUILD)/libcommon.a $(LDFLAGS) -lcmocka -lyajl -larchive -lssl -lcrypto -lcurl -lnghttp2 -lhttp_parser -lseccomp -lcap -lpcre2-8 -lyaml -lisal -luring

# libFuzzer targets: only with FUZZ=1 (clang objects in build-fuzz/).
# fuzz_http* see the router's headers, the others berthd's.
fuzz_inc = $(if $(filter fuzz_http%,$(1)),$(INC_ROUTER),$(INC_BERTHD))
$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/liborch.a $(BUILD)/librouter.a $(BUILD)/libcommon_http.a $(BUILD)/libcommon.a
	@mkdir -p $(dir $@) $(BUILD)/obj/tests/fuzz
	$(CC) $(CPPFLAGS) $(call fuzz_inc,$*) $(PKG_CFLAGS) $(CFLAGS) -MMD -MP -MF $(BUILD)/obj/tests/fuzz/$*.d -MT $@ \
		-fsanitize=fuzzer -o $@ $< $(BUILD)/liborch.a $(BUILD)/librouter.a $(BUILD)/libcommon_http.a $(BUILD)/libcommon.a \
		$(LDFLAGS) -fsanitize=fuzzer -lyajl -larchive -lssl -lcrypto -lcurl -lnghttp2 -lhttp_parser -lseccomp -lcap -lpcre2-8 -lyaml -lisal -luring

# the shipped instance types and seccomp profile are compiled into berthd
$(BUILD)/obj/orchestrator/limits/embedded_configs.o: configs/instance-types.json configs/seccomp.json

-include $(shell find $(BUILD)/obj $(BUILD)/tests -name '*.d' 2>/dev/null)

# Layering: each berthd folder uses only the folders below it, and no two
# files of a binary call each other in a circle (includes and linked symbols).
layers: $(BINS)
	/usr/bin/python3 tests/layers.py --build $(BUILD) --berthd-layers "$(BERTHD_LAYERS)"

# ---- set-up ------------------------------------------------------------------
# Installs only what is missing, so a ready machine pays one dpkg-query.
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		if [ "$$(id -u)" != 0 ]; then echo "berth: installing packages needs root (apt-get)" >&2; exit 1; fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call apt_install,$(DEPS_BUILD) $(DEPS_RUN))
deps-test: deps
	$(call apt_install,$(DEPS_TEST))
deps-bench: deps-test
	$(call apt_install,$(DEPS_BENCH))
deps-fuzz: deps
	$(call apt_install,$(DEPS_FUZZ))

# The system user berth-router runs as (berthd --router-user, default berth):
# no login shell, no home, its own group, shared with nothing else. berthd
# refuses to run the router as nobody. Idempotent (useradd from passwd).
router-user:
	@getent passwd berth >/dev/null || { \
		if [ "$$(id -u)" != 0 ]; then echo "berth: creating the system user berth needs root" >&2; exit 1; fi; \
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin --comment "berth router" berth && echo "created the system user berth"; }

echo-image: $(BUILD)/echo-serve
	examples/echo/build-image.sh $(BUILD)/echo-serve $(BUILD)/images/echo

# The scikit-learn, PyTorch, XGBoost and nginx+gunicorn example images (OCI layouts built
# from Debian packages, cached in /var/cache/berth/images; minutes when the
# cache is empty, a hash check when it is warm), linked as $(BUILD)/images/NAME.
FRAMEWORK_IMAGES := sklearn-preprocess pytorch-classifier xgboost-regressor sklearn-mme nginx-gunicorn
framework-images:
	$(call apt_install,$(DEPS_IMAGES))
	@set -e; for i in $(FRAMEWORK_IMAGES); do \
		examples/lib/build-oci-image.sh examples/$$i $(BUILD)/images/$$i; done

# ---- run, test ---------------------------------------------------------------
run: deps
	$(MAKE) all
	$(MAKE) echo-image
	$(MAKE) --no-print-directory router-user
	examples/demo.sh $(BUILD)

# Stops what make run started: berthd and its router (berth shutdown on
# the demo's admin socket); the containers keep running, and the next
# make run adopts them, unless STOP_CONTAINERS=1 (records kept either way).
BERTH_RUN_DIR ?= /run/berth
stop:
	@if [ -S "$(BERTH_RUN_DIR)/berthd.sock" ]; then \
		$(BUILD)/berth --socket "$(BERTH_RUN_DIR)/berthd.sock" shutdown $(if $(STOP_CONTAINERS),--stop-containers); \
	else echo "no berthd is serving $(BERTH_RUN_DIR)/berthd.sock: nothing to stop"; fi

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: all echo-image framework-images router-user
	BERTH_BUILD=$(abspath $(BUILD)) /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/integration

check: deps-test
	$(MAKE) -j$(JOBS) SAN=1 all
	$(MAKE) SAN=1 unit layers
	$(MAKE) fuzz-check
	$(MAKE) SAN=1 integration
	$(MAKE) tsan-check

# berthd's threads (workers, health monitor, updates, multi-model loads, pulls)
# under ThreadSanitizer: the integration tests that drive them, against
# build-tsan/. Any report fails the run: TSan's exit code is 66 and the
# fixture's teardown fails on a "ThreadSanitizer" line in berthd's or the
# router's stderr. Run it under the integration lock like any integration
# run. Where TSan cannot map its shadow memory (FATAL: ThreadSanitizer:
# unexpected memory mapping, kernels with high vm.mmap_rnd_bits), run
# berthd without address randomisation: make tsan-check
# TSAN_WRAPPER="setarch $$(uname -m) -R".
TSAN_TESTS   := tests/integration/test_health.py tests/integration/test_update.py \
                tests/integration/test_mme_berthd.py tests/integration/test_registry.py
TSAN_WRAPPER ?=
tsan-check:
	$(MAKE) -j$(JOBS) TSAN=1 all echo-image
	BERTH_BUILD=$(abspath build-tsan) BERTH_WRAPPER="$(TSAN_WRAPPER)" \
	TSAN_OPTIONS="exitcode=66 second_deadlock_stack=1 history_size=4" \
		/usr/bin/python3 -m pytest -q -p no:cacheprovider $(TSAN_TESTS)

# Fuzzing (tests/fuzz/README.md). Each target first replays every file of
# tests/fuzz/NAME/ (seeds and the regression inputs of crashes once found),
# then fuzzes from them: FUZZ_CHECK_SECONDS each in make check, FUZZ_SECONDS
# each in make fuzz. A crash is written to tests/fuzz/NAME/crash-SHA1 and the
# run fails; keep the file once fixed: it is replayed from then on.
FUZZ_SECONDS       ?= 600
FUZZ_CHECK_SECONDS ?= 12
FUZZ_TARGETS       ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC))
fuzz-build:
	$(MAKE) -j$(JOBS) FUZZ=1 $(patsubst %,build-fuzz/fuzz/fuzz_%,$(FUZZ_TARGETS))
fuzz: deps-fuzz fuzz-build
	tests/fuzz/run.sh build-fuzz/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)
fuzz-check: deps-fuzz fuzz-build
	tests/fuzz/run.sh build-fuzz/fuzz $(FUZZ_CHECK_SECONDS) $(FUZZ_TARGETS)

bench: deps-bench
	$(MAKE) all echo-image
	tests/bench/run.sh $(BUILD)

# Binaries, /etc/berth/{berthd.json,instance-types.json,seccomp.json} (an
# existing file is kept; the new one lands beside it as FILE.dist), the
# systemd unit, the system user berth the router runs as, and, when
# /etc/berth/credentials has no key, an admin key (printed once with the
# boto3 and aws CLI lines that use it).
install: all
	install -D -m 0755 $(BUILD)/berthd $(DESTDIR)/usr/local/sbin/berthd
	install -D -m 0755 $(BUILD)/berth-router $(DESTDIR)/usr/local/sbin/berth-router
	install -D -m 0755 $(BUILD)/berth-shim $(DESTDIR)/usr/local/libexec/berth/berth-shim
	install -D -m 0755 $(BUILD)/berth $(DESTDIR)/usr/local/bin/berth
	@set -e; for f in berthd.json instance-types.json seccomp.json; do \
		dst=$(DESTDIR)/etc/berth/$$f; \
		if [ -e $$dst ] && ! cmp -s configs/$$f $$dst; then \
			install -D -m 0644 configs/$$f $$dst.dist; echo "kept $$dst; the shipped one is $$dst.dist"; \
		else install -D -m 0644 configs/$$f $$dst; fi; \
	done
	install -D -m 0644 configs/berthd.service $(DESTDIR)/etc/systemd/system/berthd.service
	install -D -m 0644 README.md $(DESTDIR)/usr/local/share/doc/berth/README.md
	@if [ -z "$(DESTDIR)" ]; then \
		$(MAKE) --no-print-directory router-user; \
		examples/first-key.sh /usr/local/bin/berth /etc/berth/credentials http://127.0.0.1:8080; \
		if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi; \
		echo "installed; start with: systemctl enable --now berthd"; \
	fi

clean:
	rm -rf build build-san build-fuzz build-tsan
