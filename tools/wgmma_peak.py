#!/usr/bin/env python3
"""What the tensor cores of this GPU give a stream of `wgmma`s that wait on nothing else.

The 2:4 INT4 prefill kernel (Sources/NMTargetPTX/WarpgroupLinearKernel.swift) issues, a stage,
two `wgmma.mma_async.sp.m64nNk32` a warpgroup with A (the dequantized weights) from registers and
B (the activations) from a 128-byte-swizzled shared-memory buffer, then `wgmma.wait_group 1`.
This measures the same instruction stream alone: no loads, no dequantization, no barriers, the
same descriptors over four buffers. Its rate is the ceiling the kernel can approach, and says
how far a target such as "1.71x cuBLAS at M = 4096" is from what the hardware gives.

Each variant is a PTX kernel written here and run through the CUDA driver API (ctypes on
libcuda.so.1; no compiler needed). Every block times its loop with %clock64, so the rate comes
out in multiply-adds a cycle an SM (4096 is the sparse peak, 2048 the dense one), beside
TFLOP/s from the launch's events (dense-equivalent: a 2:4 multiply-add counts as two).

    python3 tools/wgmma_peak.py [--iterations 4096] [--ptx-only DIR]
"""
import argparse
import ctypes
import os
import sys

SPARSE_PEAK, DENSE_PEAK = 4096, 2048          # multiply-adds a cycle an SM (dense-equivalent for sparse)


class Variant:
    """One kernel: a loop of four stages, each `wgmma.fence`, the stage's `wgmma`s, a commit and a
    `wait_group`; the flags add the real kernel's other work a stage, one piece at a time:
    `barrier` a block barrier; `copies` a 1D bulk copy of the stage's bytes from global memory
    two stages ahead, completing on the buffer's mbarrier, which the stage waits on; `dequant`
    the kernel's INT4-to-f16 instructions making A's registers; `weights` each thread's 16-byte
    `ld.global.nc` of weights four stages ahead (as the kernel's two units), which the
    dequantization reads."""

    def __init__(self, name, sparse=True, n=256, warpgroups=2, blocks_per_sm=1, a_from_smem=False, wait=1,
                 barrier=False, copies=False, dequant=False, weights=False, buffers=4, lookahead=2, row_tiles=1):
        self.name, self.sparse, self.n, self.warpgroups = name, sparse, n, warpgroups
        self.blocks_per_sm, self.a_from_smem, self.wait = blocks_per_sm, a_from_smem, wait
        self.barrier, self.copies, self.dequant, self.weights = barrier, copies, dequant or weights, weights
        self.buffers, self.lookahead, self.row_tiles = buffers, lookahead, row_tiles
        assert lookahead <= buffers - 2, "a buffer is rewritten only once wait_group 1 has retired its reads"

    @property
    def stage_bytes(self):
        return self.n * 128                  # 64 columns (128 bytes) x N tokens

    @property
    def shared_bytes(self):                  # the stages, A's tile for the shared-memory form, the mbarriers
        return self.buffers * self.stage_bytes + (8192 if self.a_from_smem else 0) + 8 * self.buffers

    @property
    def macs_per_stage(self):                # a warpgroup's, dense-equivalent: 64 rows a row tile x N x 64 columns
        return 64 * self.row_tiles * self.n * 64

    def ptx(self):
        n, acc_count, S, B, L = self.n, self.n // 2, self.stage_bytes, self.buffers, self.lookahead
        sets = 4 if B % 4 == 0 else B          # weight register sets: a stage's, refilled for `sets` stages on (the kernel: 4)
        rt = self.row_tiles                    # row tiles a warpgroup: each its accumulators, A and weights
        accs = [", ".join(f"%f{r * acc_count + i}" for i in range(acc_count)) for r in range(rt)]
        lines = [
            ".version 8.3", ".target sm_90a", ".address_size 64",
            ".extern .shared .align 1024 .b8 stage[];",
            ".visible .entry peak(.param .u64 out, .param .u64 source, .param .u32 iterations)",
            f".maxntid {128 * self.warpgroups}, 1, 1",
        ]
        if self.blocks_per_sm > 1:
            lines.append(f".minnctapersm {self.blocks_per_sm}")
        lines += ["{",
                  f"    .reg .f32 %f<{rt * acc_count + 1}>;", "    .reg .b32 %r<2000>;", "    .reg .b64 %rd<160>;",
                  "    .reg .pred %p<12>;",
                  "    mov.u64 %rd30, %clock64;",
                  "    mov.u32 %r0, stage;",
                  "    shr.u32 %r1, %r0, 4;",
                  "    or.b32 %r1, %r1, 0x10000;",
                  "    mov.u32 %r21, %tid.x;", "    setp.eq.u32 %p0, %r21, 0;",
                  "    ld.param.u64 %rd40, [source];",
                  "    mov.u32 %r40, %ctaid.x;", "    mul.lo.u32 %r40, %r40, 37;"]   # the block's stage counter
        # B descriptors: each of the four buffers' k steps (sparse: k32 = 64 bytes; dense: k16 = 32)
        steps = 2 if self.sparse else 4
        descriptors = []
        for buffer in range(B):
            for k in range(steps):
                reg = f"%rd{100 + len(descriptors)}"
                offset = (buffer * S + k * (128 // steps)) // 16
                lines += [f"    add.u32 %r2, %r1, {offset};", f"    cvt.u64.u32 {reg}, %r2;",
                          f"    or.b64 {reg}, {reg}, 0x4000004000000000;"]
                descriptors.append(reg)
        # A: registers of arbitrary f16 values, or a descriptor of the tile after the buffers
        lines += ["    mov.b32 %r10, 0x3c003c00;", "    mov.b32 %r11, 0x3c003c00;",
                  "    mov.b32 %r12, 0x3c003c00;", "    mov.b32 %r13, 0x3c003c00;",
                  "    mov.b32 %r14, 0x44444444;",          # 2:4 metadata: elements 0 and 1 of each 4
                  f"    add.u32 %r3, %r1, {B * S // 16};", "    cvt.u64.u32 %rd20, %r3;",
                  "    or.b64 %rd20, %rd20, 0x4000004000000000;",
                  "    mov.u32 %r15, 1;", "    setp.ne.u32 %p1, %r15, 0;",
                  "    mov.b32 %r16, 0x000F000F;", "    mov.b32 %r17, 0x64006400;", "    mov.b32 %r18, 0x64086408;",
                  "    mov.b32 %r19, 0x3c003c00;",
                  "    ld.param.u32 %r20, [iterations];", "    mov.u32 %r30, 0;"]
        lines += [f"    mov.f32 %f{i}, 0f00000000;" for i in range(rt * acc_count)]
        bars = f"%r0+{self.shared_bytes - 8 * B}"

        def copy(stage_ahead, buffer, guard):
            # thread 0 brings S bytes from source + (counter + ahead) mod 32 MB into the buffer
            return [f"    add.u32 %r41, %r40, {stage_ahead};", f"    and.b32 %r41, %r41, {(32 << 20) // S - 1};",
                    f"    mul.wide.u32 %rd41, %r41, {S};", "    add.u64 %rd41, %rd41, %rd40;",
                    f"    @{guard} mbarrier.arrive.expect_tx.shared::cta.b64 %rd42, [{bars}+{8 * buffer}], {S};",
                    f"    @{guard} cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%r0+{buffer * S}], [%rd41], {S}, [{bars}+{8 * buffer}];"]

        def weight_load(set_):
            # 16 bytes a thread a row tile a stage, from source + ((counter mod 8192 / rt) * rt * threads + tid) * 16
            out = [f"    and.b32 %r42, %r40, {8192 // rt - 1};", f"    mad.lo.u32 %r42, %r42, {128 * self.warpgroups * rt}, %r21;",
                   "    mul.wide.u32 %rd43, %r42, 16;", "    add.u64 %rd43, %rd43, %rd40;"]
            for r in range(rt):
                w = 200 + 4 * (set_ * rt + r)
                out.append(f"    ld.global.nc.v4.u32 {{%r{w}, %r{w + 1}, %r{w + 2}, %r{w + 3}}}, [%rd43+{r * 128 * self.warpgroups * 16}];")
            return out

        if self.copies:
            lines += [f"    @%p0 mbarrier.init.shared::cta.b64 [{bars}+{8 * i}], 1;" for i in range(B)]
            lines += ["    @%p0 fence.mbarrier_init.release.cluster;", "    bar.sync 0;"]
            for i in range(L):
                lines += copy(i, i, "%p0")
        if self.weights:
            for set_ in range(sets):
                lines += weight_load(set_)
                lines.append("    add.u32 %r40, %r40, 1;")
            lines.append(f"    sub.u32 %r40, %r40, {sets};")
        elif self.dequant:
            lines += [f"    mov.b32 %r{200 + i}, %r{10 + i % 4};" for i in range(4 * sets * rt)]
        a_smem = "%rd20"
        shape = f"m64n{n}k32" if self.sparse else f"m64n{n}k16"
        trans_a = ", 0" if self.a_from_smem else ""
        lines.append("LOOP:")
        lines += ["    setp.gt.u32 %p6, %r20, 1;", "    and.pred %p7, %p0, %p6;"]   # copies for the next iteration
        fresh = 400
        for buffer in range(B):              # a stage a buffer an iteration, as the kernel's loop
            if self.copies:
                lines += [f"WAIT{buffer}:", f"    mbarrier.try_wait.parity.shared::cta.b64 %p5, [{bars}+{8 * buffer}], %r30;",
                          f"    @!%p5 bra WAIT{buffer};"]
            if self.barrier:
                lines.append("    bar.sync 0;")
            if self.copies:
                lines += copy(L, (buffer + L) % B, "%p0" if buffer + L < B else "%p7")
            a_regs = {}
            for k, r in ((k, r) for k in range(steps) for r in range(rt)):
                if self.a_from_smem:
                    a_regs[k, r] = a_smem
                elif self.dequant:
                    word = f"%r{200 + 4 * ((buffer % sets) * rt + r) + k}"   # this stage's set, loaded `sets` stages ahead
                    regs = []
                    for i in range(4):
                        shifted, d = f"%r{fresh}", f"%r{fresh + 1}"
                        fresh += 2
                        lines += [f"    shr.u32 {shifted}, {word}, {4 * i};",
                                  f"    lop3.b32 {d}, {shifted}, %r16, %r17, 0xEA;",
                                  f"    sub.f16x2 {d}, {d}, %r18;", f"    mul.f16x2 {d}, {d}, %r19;"]
                        regs.append(d)
                    a_regs[k, r] = "{" + ", ".join(regs) + "}"
                else:
                    a_regs[k, r] = "{%r10, %r11, %r12, %r13}"
            if self.weights:                 # the set this stage used, refilled for `sets` stages on
                lines += [f"    add.u32 %r40, %r40, {sets};"] + weight_load(buffer % sets) + [f"    sub.u32 %r40, %r40, {sets};"]
            lines.append("    wgmma.fence.sync.aligned;")
            for k, r in ((k, r) for k in range(steps) for r in range(rt)):
                d, acc, a = descriptors[buffer * steps + k], accs[r], a_regs[k, r]
                if self.sparse:
                    lines.append(f"    wgmma.mma_async.sp.sync.aligned.{shape}.f32.f16.f16 {{{acc}}}, {a}, {d}, %r14, 0, %p1, 1, 1{trans_a}, 0;")
                else:
                    lines.append(f"    wgmma.mma_async.sync.aligned.{shape}.f32.f16.f16 {{{acc}}}, {a}, {d}, %p1, 1, 1{trans_a}, 0;")
            lines += ["    wgmma.commit_group.sync.aligned;", f"    wgmma.wait_group.sync.aligned {self.wait};",
                      "    add.u32 %r40, %r40, 1;"]
        lines += ["    xor.b32 %r30, %r30, 1;",
                  "    sub.u32 %r20, %r20, 1;", "    setp.ne.u32 %p2, %r20, 0;", "    @%p2 bra LOOP;",
                  "    wgmma.wait_group.sync.aligned 0;",
                  "    mov.u64 %rd31, %clock64;",
                  "    sub.u64 %rd31, %rd31, %rd30;",
                  # thread 0 of each block writes its cycles (and f0, so the loop is not dead)
                  "    @!%p0 bra DONE;",
                  "    ld.param.u64 %rd32, [out];", "    mov.u32 %r22, %ctaid.x;",
                  "    mul.wide.u32 %rd33, %r22, 16;", "    add.u64 %rd32, %rd32, %rd33;",
                  "    st.global.u64 [%rd32], %rd31;"]
        lines += [f"    add.f32 %f0, %f0, %f{r * acc_count};" for r in range(1, rt)]   # every row tile's chain is live
        lines += ["    st.global.f32 [%rd32+8], %f0;",
                  "DONE:", "    ret;", "}"]
        return "\n".join(lines) + "\n"


KERNEL = dict(barrier=True, copies=True, weights=True)
VARIANTS = [
    Variant("sparse RS n256, 2 warpgroups, 1 block/SM (the kernel's 256-token form)"),
    Variant("sparse RS n128, 2 warpgroups, 2 blocks/SM (the kernel's 128-token form)", n=128, blocks_per_sm=2),
    Variant("sparse RS n128, 4 warpgroups, 1 block/SM", n=128, warpgroups=4),
    Variant("sparse RS n256, 1 warpgroup, 1 block/SM", warpgroups=1),
    Variant("sparse SS n256, 2 warpgroups (A from shared memory)", a_from_smem=True),
    Variant("dense RS n256, 2 warpgroups", sparse=False),
    Variant("n256 + block barrier", barrier=True),
    Variant("n256 + dequantization", dequant=True),
    Variant("n256 + weight loads + dequantization", weights=True),
    Variant("n256 + bulk copies (and their mbarrier waits)", copies=True),
    Variant("n256 + bulk copies + block barrier", copies=True, barrier=True),
    Variant("n256 + bulk copies + block barrier, 6 buffers, 4 ahead", copies=True, barrier=True, buffers=6, lookahead=4),
    Variant("n256 2 warpgroups (128 rows), all of them (the kernel's stage loop)", **KERNEL),
    Variant("n128 2 warpgroups (128 rows) 2 blocks/SM, all of them", n=128, blocks_per_sm=2, **KERNEL),
    Variant("n128 4 warpgroups (256 rows), all of them", n=128, warpgroups=4, **KERNEL),
    Variant("n128 4 warpgroups (256 rows), all of them, 8 buffers, 6 ahead", n=128, warpgroups=4, buffers=8, lookahead=6, **KERNEL),
    Variant("n128 2 warpgroups x 2 row tiles (256 rows), all of them", n=128, row_tiles=2, **KERNEL),
    Variant("n64 4 warpgroups x 2 row tiles (512 rows), all of them", n=64, warpgroups=4, row_tiles=2, **KERNEL),
    Variant("n64 2 warpgroups x 4 row tiles (512 rows), all of them", n=64, row_tiles=4, **KERNEL),
    Variant("n96 2 warpgroups x 2 row tiles (256 rows), all of them", n=96, row_tiles=2, buffers=8, lookahead=6, **KERNEL),
    Variant("n64 4 warpgroups x 2 row tiles (512 rows), all of them, 8 buffers, 6 ahead", n=64, warpgroups=4, row_tiles=2, buffers=8, lookahead=6, **KERNEL),
]


class Driver:
    """The few CUDA driver API calls this needs, through ctypes."""

    def __init__(self):
        self.lib = ctypes.CDLL("libcuda.so.1")
        self.check(self.lib.cuInit(0), "cuInit")
        dev = ctypes.c_int()
        self.check(self.lib.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet")
        self.ctx = ctypes.c_void_p()
        self.check(self.lib.cuDevicePrimaryCtxRetain(ctypes.byref(self.ctx), dev), "cuDevicePrimaryCtxRetain")
        self.check(self.lib.cuCtxSetCurrent(self.ctx), "cuCtxSetCurrent")
        sms, clock = ctypes.c_int(), ctypes.c_int()
        self.check(self.lib.cuDeviceGetAttribute(ctypes.byref(sms), 16, dev), "multiprocessors")   # MULTIPROCESSOR_COUNT
        self.check(self.lib.cuDeviceGetAttribute(ctypes.byref(clock), 13, dev), "clock rate")      # CLOCK_RATE (kHz)
        name = ctypes.create_string_buffer(128)
        self.lib.cuDeviceGetName(name, 128, dev)
        self.sms, self.clock_khz, self.name = sms.value, clock.value, name.value.decode()
        self.source = ctypes.c_uint64()                  # 32 MB the copies and weight loads read (zeros)
        self.check(self.lib.cuMemAlloc_v2(ctypes.byref(self.source), 32 << 20), "cuMemAlloc")
        self.check(self.lib.cuMemsetD8_v2(self.source, 0, 32 << 20), "cuMemsetD8")

    def check(self, status, what):
        if status != 0:
            text = ctypes.c_char_p()
            self.lib.cuGetErrorString(status, ctypes.byref(text))
            sys.exit(f"wgmma_peak: {what} failed: {text.value.decode() if text.value else status}")

    def run(self, v, iterations):
        module, function = ctypes.c_void_p(), ctypes.c_void_p()
        log = ctypes.create_string_buffer(8192)
        options = (ctypes.c_int * 2)(5, 6)                # CU_JIT_ERROR_LOG_BUFFER, ..._SIZE_BYTES
        values = (ctypes.c_void_p * 2)(ctypes.cast(log, ctypes.c_void_p), ctypes.c_void_p(8192))
        status = self.lib.cuModuleLoadDataEx(ctypes.byref(module), v.ptx().encode() + b"\0", 2, options, values)
        if status != 0:
            sys.exit(f"wgmma_peak: {v.name}: the PTX did not load:\n{log.value.decode()}")
        self.check(self.lib.cuModuleGetFunction(ctypes.byref(function), module, b"peak"), "cuModuleGetFunction")
        self.check(self.lib.cuFuncSetAttribute(function, 8, v.shared_bytes), "max dynamic shared memory")
        blocks = self.sms * v.blocks_per_sm
        out = ctypes.c_uint64()
        self.check(self.lib.cuMemAlloc_v2(ctypes.byref(out), blocks * 16), "cuMemAlloc")
        start, stop = ctypes.c_void_p(), ctypes.c_void_p()
        self.check(self.lib.cuEventCreate(ctypes.byref(start), 0), "cuEventCreate")
        self.check(self.lib.cuEventCreate(ctypes.byref(stop), 0), "cuEventCreate")
        out_arg, source_arg, iter_arg = ctypes.c_uint64(out.value), ctypes.c_uint64(self.source.value), ctypes.c_uint32(iterations)
        params = (ctypes.c_void_p * 3)(*(ctypes.cast(ctypes.byref(a), ctypes.c_void_p) for a in (out_arg, source_arg, iter_arg)))
        times = []
        for _ in range(5):                                # the first warms the clocks; the median of the rest
            self.check(self.lib.cuEventRecord(start, None), "cuEventRecord")
            self.check(self.lib.cuLaunchKernel(function, blocks, 1, 1, 128 * v.warpgroups, 1, 1, v.shared_bytes,
                                               None, params, None), "cuLaunchKernel")
            self.check(self.lib.cuEventRecord(stop, None), "cuEventRecord")
            self.check(self.lib.cuEventSynchronize(stop), "cuEventSynchronize")
            ms = ctypes.c_float()
            self.check(self.lib.cuEventElapsedTime(ctypes.byref(ms), start, stop), "cuEventElapsedTime")
            times.append(ms.value)
        host = (ctypes.c_uint64 * (2 * blocks))()
        self.check(self.lib.cuMemcpyDtoH_v2(host, out, blocks * 16), "cuMemcpyDtoH")
        self.lib.cuMemFree_v2(out)
        self.lib.cuModuleUnload(module)
        cycles = max(host[2 * i] for i in range(blocks))
        ms = sorted(times[1:])[len(times[1:]) // 2]
        macs = blocks * v.warpgroups * iterations * v.buffers * v.macs_per_stage   # a stage a buffer an iteration
        per_cycle = macs / self.sms / cycles
        return ms, 2 * macs / (ms * 1e-3) / 1e12, per_cycle, 2 * macs / cycles / 1e6   # TFLOP/s at ~ GHz


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=4096, help="loop iterations (four stages each)")
    parser.add_argument("--ptx-only", metavar="DIR", help="write the variants' PTX to DIR and stop (no GPU needed)")
    args = parser.parse_args()
    if args.ptx_only:
        os.makedirs(args.ptx_only, exist_ok=True)
        for i, v in enumerate(VARIANTS):
            with open(os.path.join(args.ptx_only, f"variant{i}.ptx"), "w") as f:
                f.write(f"// {v.name}\n" + v.ptx())
        return
    d = Driver()
    print(f"# {d.name}, {d.sms} SMs, {d.clock_khz / 1e6:.2f} GHz boost clock; {args.iterations} iterations of 4 stages")
    print(f"# peaks: sparse {SPARSE_PEAK} multiply-adds a cycle an SM ({2 * SPARSE_PEAK * d.sms * d.clock_khz / 1e9:.0f} TFLOP/s at boost), dense {DENSE_PEAK}")
    print("| variant | ms | TFLOP/s (events) | multiply-adds / cycle / SM (clock64) | of its peak |")
    print("| --- | --- | --- | --- | --- |")
    for v in VARIANTS:
        ms, tflops, per_cycle, _ = d.run(v, args.iterations)
        peak = SPARSE_PEAK if v.sparse else DENSE_PEAK
        print(f"| {v.name} | {ms:.3f} | {tflops:.0f} | {per_cycle:.0f} | {100 * per_cycle / peak:.1f}% |", flush=True)


if __name__ == "__main__":
    main()
