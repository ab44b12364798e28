/// Small PTX kernels the runtime and its checks use beside the compiled model's kernels.
public enum UtilityKernels {
    /// `nm_spin(ns: u64)`: one thread waits `ns` nanoseconds of the GPU's global timer. Queued
    /// ahead of timed launches it keeps the GPU busy while the host queues them, so that event
    /// timings measure the kernels and never a GPU waiting on the host; it touches no memory.
    public static let spin = """
    .visible .entry nm_spin(.param .u64 nm_spin_ns)
    {
        .reg .pred %p<1>;
        .reg .b64 %rd<4>;
        ld.param.u64 %rd0, [nm_spin_ns];
        mov.u64 %rd1, %globaltimer;
    SPIN:
        mov.u64 %rd2, %globaltimer;
        sub.s64 %rd3, %rd2, %rd1;
        setp.lt.u64 %p0, %rd3, %rd0;
        @%p0 bra SPIN;
        ret;
    }

    """

    /// `nm_add_one(p: u64, n: u32)`: adds 1 to n floats (256 threads a block); the runtime check.
    public static let addOne = """
    .visible .entry nm_add_one(.param .u64 nm_add_one_p, .param .u32 nm_add_one_n)
    {
        .reg .pred %p<1>;
        .reg .b32 %r<3>;
        .reg .b64 %rd<2>;
        .reg .f32 %f<1>;
        ld.param.u64 %rd0, [nm_add_one_p];
        cvta.to.global.u64 %rd0, %rd0;
        ld.param.u32 %r0, [nm_add_one_n];
        mov.u32 %r1, %tid.x;
        mov.u32 %r2, %ctaid.x;
        mad.lo.u32 %r1, %r2, 256, %r1;
        setp.ge.u32 %p0, %r1, %r0;
        @%p0 bra END;
        mul.wide.u32 %rd1, %r1, 4;
        add.s64 %rd1, %rd0, %rd1;
        ld.global.f32 %f0, [%rd1];
        add.f32 %f0, %f0, 0f3F800000;
        st.global.f32 [%rd1], %f0;
    END:
        ret;
    }

    """
}
