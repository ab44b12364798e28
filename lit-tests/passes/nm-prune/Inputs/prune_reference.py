"""An independent float64 numpy implementation of nm-prune's three methods, to check nmc-opt.

    prune_reference.py make OUT.nmir --seed S --rows R --k K --n N --m M [--dead J ...]
        writes a module with one random linear layer @w (R x K), correlated inputs X of
        uneven scale, @w.calib.sqnorm and @w.calib.hessian computed from X, and beside it
        OUT.nmir.npz with W and H.
    prune_reference.py check OUT.nmir PRINTED.nmir --method METHOD --n N --m M [--damp D]
        recomputes the pruned W and compares it with the @w that nmc-opt printed.

SparseGPT follows the paper (Frantar & Alistarh 2023) the straightforward way, unblocked:
dead inputs (H_jj = 0) get H_jj = 1 and a zero column; damp * mean(diag H) on the diagonal;
H^-1 from numpy's Cholesky and inverse, then its upper Cholesky factor U; column by column,
at each group start keep the N largest w^2 / U_jj^2 of the group (ties: lower index), prune
the rest and subtract err * U[i, i:] from the row, err = w_i / U_ii.
"""
import argparse
import json
import os
import re
import struct
import sys

try:
    import numpy as np
except ImportError:
    sys.exit("prune_reference.py needs numpy (pip install numpy)")


def keep_mask(scores, n):
    """True where a score is among the n largest of its row (ties to the lower index)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    keep = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(keep, order[:, :n], True, axis=1)
    return keep


def by_score(w, scores, n, m):
    out = w.copy()
    for g in range(0, w.shape[1], m):
        keep = keep_mask(scores[:, g:g + m], n)
        out[:, g:g + m][~keep] = 0
    return out


def sparsegpt(w, h, n, m, damp):
    w = w.astype(np.float64).copy()
    h = h.astype(np.float64).copy()
    k = w.shape[1]
    dead = np.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    h[np.diag_indices(k)] += damp * np.mean(np.diag(h))
    lower = np.linalg.cholesky(h)
    lower_inv = np.linalg.inv(lower)
    h_inv = lower_inv.T @ lower_inv
    u = np.linalg.cholesky(h_inv).T
    diag = np.diag(u)
    keep = None
    for i in range(k):
        if i % m == 0:
            keep = keep_mask(w[:, i:i + m] ** 2 / diag[i:i + m] ** 2, n)
        q = np.where(keep[:, i % m], w[:, i], 0.0)
        err = (w[:, i] - q) / u[i, i]
        w[:, i:] -= np.outer(err, u[i, i:])
        w[:, i] = q
    return w


def read_safetensor(path, name):
    """One F32 tensor of a safetensors file: 8-byte little-endian header size, JSON header, data."""
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    info = header[name]
    if info["dtype"] != "F32":
        sys.exit(f"{name} in {path} is {info['dtype']}, not F32")
    begin, end = info["data_offsets"]
    return np.frombuffer(data[begin:end], dtype="<f4").reshape(info["shape"])


def values(xs):
    return "[" + ", ".join(repr(float(v)) for v in xs) + "]"


def make(args):
    rng = np.random.default_rng(args.seed)
    r, k, tokens = args.rows, args.k, 4 * args.k
    factors = rng.standard_normal((4, tokens))
    x = rng.standard_normal((k, tokens)) + rng.standard_normal((k, 4)) @ factors
    x *= np.exp(rng.standard_normal((k, 1)))
    x[args.dead, :] = 0
    w = rng.standard_normal((r, k)).astype(np.float32)
    h = (x @ x.T).astype(np.float32)
    sq = (x * x).sum(axis=1).astype(np.float32)
    np.savez(args.out + ".npz", w=w, h=h, sq=sq)
    with open(args.out, "w") as f:
        f.write("module {\n  weights {\n")
        f.write(f"    @w : tensor<{r}x{k}xf32> = dense<{values(w.ravel())}>\n")
        f.write(f"    @w.calib.sqnorm : tensor<{k}xf32> = dense<{values(sq)}>\n")
        f.write(f"    @w.calib.hessian : tensor<{k}x{k}xf32> = dense<{values(h.ravel())}>\n")
        f.write("  }\n")
        f.write(f"  func @f(%x: tensor<?x{k}xf32>) -> tensor<?x{r}xf32> {{\n")
        f.write(f"    %w = nn.weight {{name = @w}} : tensor<{r}x{k}xf32>\n")
        f.write(f"    %y = nn.linear %x, %w : tensor<?x{r}xf32>\n")
        f.write("    return %y\n  }\n}\n")


def check(args):
    data = np.load(args.input + ".npz")
    w, h, sq = data["w"], data["h"], data["sq"]
    if args.method == "magnitude":
        expected = by_score(w.astype(np.float64), np.abs(w.astype(np.float64)), args.n, args.m)
    elif args.method == "wanda":
        expected = by_score(w.astype(np.float64), np.abs(w.astype(np.float64)) * np.sqrt(sq.astype(np.float64)), args.n, args.m)
    else:
        expected = sparsegpt(w, h, args.n, args.m, args.damp)
    text = open(args.printed).read()
    match = re.search(r"@w : tensor<(\d+)x(\d+)xf32, nm = (\d+):(\d+)>( = dense<\[([^\]]*)\]>)?", text)
    if not match:
        sys.exit("no pruned @w with an nm type in " + args.printed)
    rows, k, n, m = (int(match.group(i)) for i in range(1, 5))
    if (rows, k, n, m) != (w.shape[0], w.shape[1], args.n, args.m):
        sys.exit(f"@w is {rows}x{k} with {n}:{m}; expected {w.shape[0]}x{w.shape[1]} with {args.n}:{args.m}")
    if match.group(6) is not None:
        got = np.array([float(v) for v in match.group(6).split(",")]).reshape(rows, k)
    else:
        weights_file = re.search(r'weights "([^"]+)"', text).group(1)
        got = read_safetensor(os.path.join(os.path.dirname(args.printed), weights_file), "w").astype(np.float64)
    same_zeros = np.array_equal(got == 0, expected == 0)
    scale = np.abs(expected).max()
    diff = np.abs(got - expected).max()
    groups = (got.reshape(rows, k // m, m) != 0).sum(axis=2).max()
    print(f"{args.method} {n}:{m}: same zeros {same_zeros}, max |difference| / max |w| {diff / scale:.1e}, "
          f"most non-zeros in a group {groups}")
    if not same_zeros or diff > 1e-4 * scale or groups > n:
        sys.exit("MISMATCH")
    print("OK")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    mk = sub.add_parser("make")
    mk.add_argument("out")
    mk.add_argument("--seed", type=int, default=0)
    mk.add_argument("--rows", type=int, default=8)
    mk.add_argument("--k", type=int, default=32)
    mk.add_argument("--dead", type=int, nargs="*", default=[])
    ck = sub.add_parser("check")
    ck.add_argument("input")
    ck.add_argument("printed")
    ck.add_argument("--method", required=True)
    ck.add_argument("--n", type=int, required=True)
    ck.add_argument("--m", type=int, required=True)
    ck.add_argument("--damp", type=float, default=0.01)
    args = p.parse_args()
    make(args) if args.command == "make" else check(args)


if __name__ == "__main__":
    main()
