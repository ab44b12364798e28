#!/usr/bin/env python3
"""The linear-layer benchmark of docs/performance-gpu.md, in one run on one GPU.

Runs `nmc-run --bench-matmul` (NMC's FP16, dense INT4 and 2:4 INT4 kernels, each checked
against a host reference) and times PyTorch's cuBLAS FP16 (F.linear), cuSPARSELt 2:4 FP16
(torch.sparse.to_sparse_semi_structured) and INT4 weight-only (torch._weight_int4pack_mm) the
same way: CUDA events around each call, median of --runs, weights rotating through copies of
at least 512 MB, all timed calls queued behind a spinning kernel (torch.cuda._sleep) so that
the GPU never waits on Python between them. Then a second method for both sides alike: one
call per weight copy captured in one CUDA graph (torch.cuda.graph; nmc-run captures its own),
per call = median replay / calls. Prints two tables (per launch, graph) with each
implementation's time and its speed-up over cuBLAS by the same method, and writes them as
Markdown with --markdown.

    python3 tools/bench_matmul.py --nmc-run device-out/nmc-run --markdown $OUT/matmul.md
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

ROTATE_BYTES = 512 << 20
SM_HZ = 1.98e9  # the H100's top SM clock; torch.cuda._sleep counts clock cycles


def median_us(calls, runs, log):
    """Median over `runs` of one call each, call r using weight copy (r + 1) % len(calls)."""
    for i in range(3):
        calls[i % len(calls)]()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    calls[0]()
    per_call = time.perf_counter() - t0  # host time of one call (queueing only, when asynchronous)
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    spin_s = 0.002 + 3 * runs * per_call
    torch.cuda._sleep(int(spin_s * SM_HZ))
    t0 = time.perf_counter()
    for r in range(runs):
        starts[r].record()
        calls[(r + 1) % len(calls)]()
        ends[r].record()
    host = time.perf_counter() - t0
    torch.cuda.synchronize()
    if host > spin_s:
        log(f"    warning: queueing took {host * 1e3:.1f} ms, longer than the {spin_s * 1e3:.1f} ms spin: "
            "the timings may include GPU idle time")
    times = sorted(s.elapsed_time(e) * 1000 for s, e in zip(starts, ends))
    return times[runs // 2]


def graph_per_launch_us(calls, runs):
    """The second method: every call once (each on its own weight copy, the copies together
    >= 512 MB) captured in one CUDA graph, replayed `runs` times; median replay / len(calls).
    None where the calls cannot be captured."""
    try:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for c in calls:
                c()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for c in calls:
                c()
        us = graph_median_us(graph, runs) / len(calls)
        del graph
        return us
    except Exception as e:  # reported, not fatal
        print(f"    graph capture failed: {e}", flush=True)
        torch.cuda.synchronize()
        return None


def calls_for_graph(calls):
    """At least 8 launches per graph, cycling through the copies."""
    return [calls[i % len(calls)] for i in range(max(8, len(calls)))]


def write_atomically(path, text):
    """Writes to a temporary sibling and renames it into place, so no reader sees a partial file."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def copies_for(nbytes):
    return max(2, math.ceil(ROTATE_BYTES / nbytes))


def mask24(n, k, gen):
    """A random 2:4 mask: two kept columns in every group of four."""
    pairs = torch.tensor([[1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 0, 1], [0, 1, 1, 0], [0, 1, 0, 1], [0, 0, 1, 1]],
                         dtype=torch.bool)
    choice = torch.randint(0, 6, (n, k // 4), generator=gen)
    return pairs[choice].reshape(n, k)


def rel_err(got, ref):
    return ((got.float() - ref.float()).abs().max() / ref.float().abs().max()).item()


def torch_points(n, k, tokens, runs, log):
    gen = torch.Generator().manual_seed(n * 31 + k)
    dev = "cuda"
    w = (torch.randn(n, k, generator=gen) * 0.02).half().to(dev)
    w24 = (w.cpu() * mask24(n, k, gen)).to(dev)
    xs = {m: torch.randn(m, k, generator=gen).half().to(dev) for m in tokens}
    points = []

    # cuBLAS FP16
    ws = [w.clone() for _ in range(copies_for(w.numel() * 2))]
    for m in tokens:
        x = xs[m]
        calls = [lambda x=x, c=c: F.linear(x, c) for c in ws]
        t = median_us(calls, runs, log)
        points.append(("cublas-fp16", m, t, None, graph_per_launch_us(calls_for_graph(calls), runs)))
    del ws

    # cuSPARSELt 2:4 FP16 (checked against the dense product on the same pruned weight)
    try:
        from torch.sparse import SparseSemiStructuredTensor, to_sparse_semi_structured
        SparseSemiStructuredTensor._FORCE_CUTLASS = False
        first = to_sparse_semi_structured(w24)
        backend = type(first).__name__
        sp = [first] + [to_sparse_semi_structured(w24.clone()) for _ in range(copies_for(w.numel()) - 1)]
        for m in tokens:
            x = xs[m]
            err = rel_err(F.linear(x, first), F.linear(x, w24)) if m <= 512 else None
            calls = [lambda x=x, c=c: F.linear(x, c) for c in sp]
            t = median_us(calls, runs, log)
            points.append(("cusparselt-2:4-fp16", m, t, err, graph_per_launch_us(calls_for_graph(calls), runs)))
        log(f"  cuSPARSELt through {backend}")
        del sp, first
    except Exception as e:  # a missing backend is reported, not fatal
        log(f"  cuSPARSELt unavailable: {e}")

    # PyTorch INT4 weight-only (tinygemm), group 128, bf16 activations
    try:
        q = torch.randint(0, 16, (n, k), generator=gen, dtype=torch.int32)
        packed_u8 = (q[:, ::2] << 4 | q[:, 1::2]).to(torch.uint8).to(dev)
        scales = (torch.rand(k // 128, n, generator=gen) * 0.02 + 0.002)
        sz = torch.stack([scales, torch.zeros_like(scales)], dim=2).to(torch.bfloat16).to(dev).contiguous()
        wp = torch._convert_weight_to_int4pack(packed_u8, 8)
        ps = [wp] + [wp.clone() for _ in range(copies_for(n * k // 2) - 1)]
        for m in tokens:
            x = xs[m].to(torch.bfloat16)
            calls = [lambda x=x, c=c: torch._weight_int4pack_mm(x, c, 128, sz) for c in ps]
            t = median_us(calls, runs, log)
            # (graph method skipped at M >= 512, where this kernel takes milliseconds a call)
            g = graph_per_launch_us(calls_for_graph(calls), runs) if m < 512 else None
            points.append(("torch-int4", m, t, None, g))
        del ps
    except Exception as e:
        log(f"  torch._weight_int4pack_mm unavailable: {e}")
    torch.cuda.empty_cache()
    return points


def graph_median_us(graph, runs):
    """Median microseconds of `runs` replays of a CUDA graph (an event pair around each), after 3 warm-ups."""
    for _ in range(3):
        graph.replay()
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1000)
    return sorted(times)[runs // 2]


# q|k|v and gate|up share their input and are stacked, as nmc-run --bench-decode does.
LAYER_SHAPES = [(12288, 4096), (4096, 4096), (22016, 4096), (4096, 11008)]
HEAD = (32000, 4096)


def torch_decode_linears_us(runs, log):
    """The linear layers of a LLaMA-7B decode step in FP16 (F.linear, cuBLAS), 32 layers and the
    output projection, captured in one CUDA graph; median over `runs` replays."""
    gen = torch.Generator().manual_seed(7)
    templates = {s: (torch.randn(*s, generator=gen) * 0.02).half().cuda() for s in set(LAYER_SHAPES + [HEAD])}
    weights = [templates[s].clone() for _ in range(32) for s in LAYER_SHAPES] + [templates[HEAD].clone()]
    x = {k: torch.randn(1, k, generator=gen).half().cuda() for k in (4096, 11008)}
    outs = [None] * len(weights)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            for i, w in enumerate(weights):
                outs[i] = F.linear(x[w.shape[1]], w)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for i, w in enumerate(weights):
            outs[i] = F.linear(x[w.shape[1]], w)
    log(f"decode (PyTorch FP16, CUDA graph): {len(weights)} launches, "
        f"{sum(w.numel() * 2 for w in weights) // 10**6} MB of weights")
    return graph_median_us(graph, runs)


def torch_decode_step_us(runs, position, ctx, log):
    """A whole LLaMA-7B decode step in PyTorch FP16 (batch 1, one token at `position`): embedding,
    per layer RMSNorm, q|k|v (stacked), rotary (rotate-half), the KV cache write, SDPA over the
    static cache (masked to the positions written), o, residual, RMSNorm, gate|up (stacked),
    SiLU·up, down, residual; final norm and the output projection. Captured in one CUDA graph;
    median over `runs` replays."""
    H, FF, L, NH, V = 4096, 11008, 32, 32, 32000
    D = H // NH
    dev, dt = "cuda", torch.float16
    gen = torch.Generator(device=dev).manual_seed(7)

    def w(n, k):
        return (torch.rand(n, k, device=dev, generator=gen, dtype=dt) - 0.5) * (2 / k ** 0.5)

    emb = torch.rand(V, H, device=dev, generator=gen, dtype=dt) - 0.5
    layers = [dict(qkv=w(3 * H, H), o=w(H, H), gu=w(2 * FF, H), down=w(H, FF),
                   n1=torch.ones(H, device=dev, dtype=dt), n2=torch.ones(H, device=dev, dtype=dt),
                   k=torch.zeros(NH, ctx, D, device=dev, dtype=dt), v=torch.zeros(NH, ctx, D, device=dev, dtype=dt))
              for _ in range(L)]
    head, norm = w(V, H), torch.ones(H, device=dev, dtype=dt)
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, D, 2, device=dev, dtype=torch.float32) / D))
    token = torch.tensor([1], device=dev)
    pos = torch.tensor([position], device=dev)
    slots = torch.arange(ctx, device=dev)

    def rms(x, weight):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5)).to(dt) * weight

    def step():
        ang = pos.float()[:, None] * inv_freq[None, :]  # [1, D/2]
        cos, sin = ang.cos().to(dt), ang.sin().to(dt)

        def rope(x):  # [NH, D]
            x1, x2 = x[:, : D // 2], x[:, D // 2:]
            return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)

        mask = (slots <= pos)[None, None, None, :]
        h = emb.index_select(0, token)  # [1, H]
        for l in layers:
            q, k, v = F.linear(rms(h, l["n1"]), l["qkv"]).split(H, -1)
            q, k = rope(q.view(NH, D)), rope(k.view(NH, D))
            l["k"].index_copy_(1, pos, k.view(NH, 1, D))
            l["v"].index_copy_(1, pos, v.view(NH, 1, D))
            a = F.scaled_dot_product_attention(q.view(1, NH, 1, D), l["k"][None], l["v"][None], attn_mask=mask)
            h = h + F.linear(a.reshape(1, H), l["o"])
            gate, up = F.linear(rms(h, l["n2"]), l["gu"]).split(FF, -1)
            h = h + F.linear(F.silu(gate) * up, l["down"])
        return F.linear(rms(h, norm), head)

    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            out = step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = step()
    for _ in range(3):
        graph.replay()
    torch.cuda.synchronize()
    assert torch.isfinite(out.float()).all(), "PyTorch decode step: non-finite logits"
    nbytes = sum(t.numel() * 2 for l in layers for t in (l["qkv"], l["o"], l["gu"], l["down"])) + head.numel() * 2
    log(f"decode step (PyTorch FP16, CUDA graph): position {position}, cache {ctx}, {nbytes // 10**6} MB of linear weights")
    return graph_median_us(graph, runs)


def decode_step_main(args, log):
    """nmc-run DIR --bench-step for each --artifacts DIR (nmc compile --config llama-7b.json
    --synthetic-weights SEED --target ptx), then PyTorch's whole step; one table."""
    rows = {}
    for d in args.artifacts.split(","):
        cmd = [args.nmc_run, d, "--bench-step", "--runs", str(args.runs), "--position", str(args.position), "--json", args.json]
        log("$ " + " ".join(cmd))
        if subprocess.run(cmd).returncode != 0:
            sys.exit(f"nmc-run {d} --bench-step failed")
        for p in json.load(open(args.json)):
            rows[p["impl"]] = p["medianMicroseconds"]
    torch.cuda.empty_cache()
    rows["pytorch-fp16-graph"] = torch_decode_step_us(args.runs, args.position, args.ctx, log)
    base = rows["pytorch-fp16-graph"]
    lines = ["| implementation | us per token | vs PyTorch FP16 + CUDA graph |", "| --- | --- | --- |"]
    for impl, us in rows.items():
        lines.append(f"| {impl} | {us:.1f} | {base / us:.2f}x |")
    text = "\n".join(lines)
    print(f"\nLLaMA-7B decode step, whole step (M = 1, position {args.position}):\n" + text)
    if args.markdown:
        write_atomically(args.markdown, text + "\n")


def decode_main(args, log):
    cmd = [args.nmc_run, "--bench-decode", "--runs", str(args.runs), "--json", args.json]
    log("$ " + " ".join(cmd))
    if subprocess.run(cmd).returncode != 0:
        sys.exit("nmc-run --bench-decode failed")
    rows = {p["impl"]: p["medianMicroseconds"] for p in json.load(open(args.json))}
    torch.cuda.empty_cache()
    rows["pytorch-fp16-graph"] = torch_decode_linears_us(args.runs, log)
    base = rows["pytorch-fp16-graph"]
    lines = ["| implementation | us per token | vs PyTorch FP16 + CUDA graph |", "| --- | --- | --- |"]
    for impl in ["pytorch-fp16-graph", "nmc-fp16", "nmc-int4", "nmc-int4Sparse24"]:
        if impl in rows:
            lines.append(f"| {impl} | {rows[impl]:.1f} | {base / rows[impl]:.2f}x |")
    text = "\n".join(lines)
    print("\nLLaMA-7B decode step, linear layers only (M = 1):\n" + text)
    if args.markdown:
        write_atomically(args.markdown, text + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nmc-run", default="device-out/nmc-run")
    ap.add_argument("--shapes", default="4096x4096,11008x4096,4096x11008")
    ap.add_argument("--tokens", default="1,16,128,512,4096")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--json", default="/tmp/nmc-matmul.json")
    ap.add_argument("--markdown")
    ap.add_argument("--skip-nmc", action="store_true")
    ap.add_argument("--nmc-args", default="",
                    help="more nmc-run --bench-matmul flags, e.g. '--kernels int4Sparse24 --wgmma-row-tiles 2 --block-tokens 128'")
    ap.add_argument("--decode", action="store_true",
                    help="time the linear layers of a LLaMA-7B decode step instead (nmc-run --bench-decode)")
    ap.add_argument("--decode-step", action="store_true",
                    help="time whole LLaMA-7B decode steps: nmc-run DIR --bench-step for each --artifacts DIR, and PyTorch's step")
    ap.add_argument("--artifacts", default="", help="--decode-step: comma-separated nmc compile --target ptx folders")
    ap.add_argument("--position", type=int, default=128, help="--decode-step: the position the steps run at")
    ap.add_argument("--ctx", type=int, default=256, help="--decode-step: PyTorch's static KV cache length")
    args = ap.parse_args()
    log = lambda s: print(s, flush=True)
    tokens = [int(t) for t in args.tokens.split(",")]
    shapes = [tuple(int(d) for d in s.split("x")) for s in args.shapes.split(",")]
    if not args.skip_nmc and not os.access(args.nmc_run, os.X_OK):
        sys.exit(f"bench_matmul.py: {args.nmc_run}: no such executable (build a static nmc-run, docs/performance-gpu.md)")
    if not torch.cuda.is_available():
        sys.exit("bench_matmul.py: PyTorch sees no CUDA device")
    log(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    if args.decode:
        return decode_main(args, log)
    if args.decode_step:
        return decode_step_main(args, log)

    table = {}  # (shape, m) -> impl -> (us, err)
    if not args.skip_nmc:
        cmd = [args.nmc_run, "--bench-matmul", "--shapes", args.shapes, "--tokens", args.tokens,
               "--runs", str(args.runs), "--json", args.json] + args.nmc_args.split()
        log("$ " + " ".join(cmd))
        if subprocess.run(cmd).returncode != 0:
            sys.exit("nmc-run --bench-matmul failed")
        for p in json.load(open(args.json)):
            table.setdefault((p["shape"], p["tokens"]), {})[p["impl"]] = (p["medianMicroseconds"], p["maxRelativeError"],
                                                                          p.get("graphMicroseconds"),
                                                                          p.get("graphDependentMicroseconds"))

    for n, k in shapes:
        log(f"PyTorch {n}x{k}")
        for impl, m, t, err, g in torch_points(n, k, tokens, args.runs, log):
            table.setdefault((f"{n}x{k}", m), {})[impl] = (t, err, g, None)
            log(f"  {impl} M={m}: {t:.2f} us" + (f", graph {g:.2f} us/launch" if g is not None else "")
                + (f", rel error vs dense {err:.1e}" if err is not None else ""))

    impls = ["cublas-fp16", "cusparselt-2:4-fp16", "torch-int4", "nmc-fp16", "nmc-int4", "nmc-int4Sparse24"]
    texts = []
    for col, title in [(0, "per launch: an event pair around each launch, median of --runs"),
                       (2, "graph: one launch per weight copy (>= 512 MB together) in a CUDA graph, "
                           "median replay / launches, median of --runs replays"),
                       (3, "graph with dependent launches: the same graph, NMC's decode kernels launched as "
                           "programmatic dependent launches (each one's weight loads start while the one before "
                           "runs; sm_90); the PyTorch columns are their plain graph (torch.mm has no such launch)")]:
        rows = [(key, row) for key, row in table.items() if col != 3 or any(v[3] is not None for v in row.values())]
        if not rows:
            continue
        head = "| weight (out x in) | M | " + " | ".join(impls) + " |"
        lines = [f"**{title}** (us; x = speed-up over cuBLAS FP16 by the same method)", "", head,
                 "|" + " --- |" * (len(impls) + 2)]
        for (shape, m), row in rows:
            base = row.get("cublas-fp16", (None, None, None, None))[min(col, 2)]
            cells = []
            for impl in impls:
                t = row[impl][col if impl.startswith("nmc-") else min(col, 2)] if impl in row else None
                if t is None:
                    cells.append("—")
                    continue
                cells.append(f"{t:.1f} us" + (f" ({base / t:.2f}x)" if base and impl != "cublas-fp16" else ""))
            lines.append(f"| {shape} | {m} | " + " | ".join(cells) + " |")
        texts.append("\n".join(lines))
    text = "\n\n".join(texts)
    print("\nmedian us (speed-up over cuBLAS FP16):\n" + text)
    if args.markdown:
        write_atomically(args.markdown, text + "\n")


if __name__ == "__main__":
    main()
