# ---- fuzzing (issue 5) ----------------------------------------------------------
# A libFuzzer target, tests/fuzz/fuzz_heap.c, over the heap sources of ARCH
# (the .S files, or the C twins with GENERIC=1), built by the host clang with
# libFuzzer, ASan and UBSan. Included from the end of the Makefile; uses its
# BUILD, HEAP_C, HEAP_S, ARCH_HDR, WARN and TOOLS_STAMP.
#   make fuzz FUZZ_SECONDS=N  fuzz for N seconds on one core (default 60)
#   make fuzz-ci              seed corpus replay (asm and C twins) + a fixed-seed run
#   make fuzz-cov             line coverage of src/heap by the seed corpus

FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 2048
FUZZ_CI_RUNS ?= 8000
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_BIN := $(FUZZ_DIR)/fuzz_heap
FUZZ_COV_BIN := $(FUZZ_DIR)/fuzz_heap-cov
FUZZ_SRC := tests/fuzz/fuzz_heap.c $(HEAP_C) $(HEAP_S)
FUZZ_CFLAGS := -std=gnu11 -g $(WARN) -Isrc/heap $(ARCH_HDR) -fno-omit-frame-pointer $(FUZZ_DEFS)
FUZZ_SAN := -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
# Flags every fuzzing run shares; new inputs go to the scratch corpus
# (first directory), never into the committed seeds.
FUZZ_RUN_FLAGS := -max_len=$(FUZZ_MAX_LEN) -timeout=10 -print_final_stats=1 \
  -artifact_prefix=$(FUZZ_DIR)/

.PHONY: fuzz fuzz-build fuzz-ci fuzz-cov

fuzz-build: $(FUZZ_BIN)

$(FUZZ_BIN): $(FUZZ_SRC) $(TEST_HDR) | $(TOOLS_STAMP)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) $(FUZZ_SAN) $(FUZZ_SRC) -o $@

fuzz: $(FUZZ_BIN)
	@mkdir -p $(FUZZ_DIR)/corpus
	$(FUZZ_BIN) $(FUZZ_RUN_FLAGS) -max_total_time=$(FUZZ_SECONDS) $(FUZZ_DIR)/corpus tests/fuzz/corpus

# The CI pass: both builds replay every seed, then one fixed-seed run.
fuzz-ci: | $(TOOLS_STAMP)
	@$(MAKE) --no-print-directory fuzz-build GENERIC=0 >/dev/null
	@$(MAKE) --no-print-directory fuzz-build GENERIC=1 >/dev/null
	@sh tools/fuzz-ci.sh "$(FUZZ_CI_RUNS)" "$(FUZZ_RUN_FLAGS)" \
	  build/$(ARCH)/fuzz/fuzz_heap build/$(ARCH)-generic/fuzz/fuzz_heap

$(FUZZ_COV_BIN): $(FUZZ_SRC) $(TEST_HDR) | $(TOOLS_STAMP)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -O1 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping \
	  $(FUZZ_SRC) -o $@

# Line coverage of src/heap/*.c by the committed seeds (FUZZ_COV_DIRS adds
# more corpus directories, e.g. $(FUZZ_DIR)/corpus after `make fuzz`).
fuzz-cov: $(FUZZ_COV_BIN)
	@rm -f $(FUZZ_DIR)/cov.profraw
	@LLVM_PROFILE_FILE=$(FUZZ_DIR)/cov.profraw $(FUZZ_COV_BIN) -runs=0 tests/fuzz/corpus $(FUZZ_COV_DIRS) \
	  >$(FUZZ_DIR)/cov.log 2>&1
	@llvm-profdata-14 merge -sparse $(FUZZ_DIR)/cov.profraw -o $(FUZZ_DIR)/cov.profdata
	@llvm-cov-14 report $(FUZZ_COV_BIN) -instr-profile=$(FUZZ_DIR)/cov.profdata $(filter src/heap/%.c,$(FUZZ_SRC))
