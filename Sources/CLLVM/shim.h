// The parts of the LLVM 19 C API that NMC uses. The include path
// (/usr/lib/llvm-19/include) is set in Package.swift.
#include <llvm-c/Core.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/Support.h>
