# lit configuration for NMC: finds the built tools, FileCheck and `not`.
import os
import shutil
import subprocess
import sys

import lit.formats

config.name = "NMC"
# The internal shell: lit 23 refuses execute_external=True, and the tests need nothing more.
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".nmir", ".test"]
config.excludes = ["Inputs", "lit.cfg.py"]
config.test_source_root = os.path.dirname(__file__)

repo_root = os.path.dirname(config.test_source_root)
bin_dir = os.environ.get("NMC_BIN_DIR", os.path.join(repo_root, ".build", "debug"))
for tool in ("nmc", "nmc-opt"):
    if not os.path.exists(os.path.join(bin_dir, tool)):
        lit_config.fatal(f"{tool} not found in {bin_dir}: build first (make build) or set NMC_BIN_DIR")


def llvm_bindir():
    try:
        return subprocess.check_output(["llvm-config-19", "--bindir"], text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "/usr/lib/llvm-19/bin"


llvm_bin = llvm_bindir()
for tool in ("FileCheck", "not"):
    if not os.path.exists(os.path.join(llvm_bin, tool)):
        lit_config.fatal(f"{tool} not found in {llvm_bin}: install llvm-19-dev (make deps)")

config.environment["PATH"] = os.pathsep.join([bin_dir, llvm_bin, config.environment.get("PATH", os.environ["PATH"])])
config.substitutions.append(("%data", os.path.join(repo_root, "..", "shared", "data")))
# The Python tools in tools/ (e.g. chain_floor.py), run by the interpreter that runs lit.
config.substitutions.append(("%python", sys.executable))
config.substitutions.append(("%tools", os.path.join(repo_root, "tools")))

# GPU-less machines (CI) check nmc-run's "no CUDA driver" message; a machine with the driver skips that test.
import ctypes.util
if ctypes.util.find_library("cuda") is None:
    config.available_features.add("no-cuda-driver")

# The CPU backend's vector kernels need AVX-512; their IR checks run where the host has it.
try:
    with open("/proc/cpuinfo") as f:
        if " avx512f " in f.read().replace("\n", " "):
            config.available_features.add("avx512")
except OSError:
    pass
