#!/usr/bin/env python3
"""An independent numpy reference of a small LLaMA GGUF (as make_tiny_llama.py writes), to check
what `nmc run` and `nmc eval perplexity` compute.

The weights come from the gguf package's reader and dequantizer; the forward pass is written
out here in float64 as llama.cpp defines it: RMSNorm, grouped-query attention with rotary
embeddings on adjacent pairs (GGUF's Q/K row order), a causal softmax, a SwiGLU MLP, residuals,
the final norm and the output head (the token embedding when there is no output.weight). The
tokenizer is a plain byte-level BPE for ASCII text (GPT-2 pre-tokenization with digits split
one by one, llama.cpp's "smollm"), merges applied lowest rank first.

    reference_llama.py MODEL.gguf generate --prompt TEXT -n N
        prints the greedy continuation as `nmc run --temperature 0` does (text, newline);
    reference_llama.py MODEL.gguf perplexity --text FILE --ctx N [--score all|second-half]
        prints `perplexity P over M tokens (W windows of N)`;
    reference_llama.py MODEL.gguf check-perplexity --text FILE --ctx N --nmc-output FILE
        compares the value in `nmc eval perplexity`'s output with this one (relative 1e-4).
"""

import argparse
import math
import re
import sys

try:
    import numpy as np
    import gguf
    from gguf.quants import dequantize
except ImportError as error:  # pragma: no cover - depends on the machine
    sys.stderr.write(
        f"reference_llama.py: error: {error}; the lit tests under lit-tests/import need the Python "
        "packages 'gguf' and 'numpy' (pip install gguf numpy)\n")
    sys.exit(2)


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


END_OF_GENERATION = {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>",
                     "<|end_of_text|>", "<EOT>"}


class Model:
    def __init__(self, path):
        reader = gguf.GGUFReader(path)
        fields = {name: f.contents() for name, f in reader.fields.items()}
        arch = fields["general.architecture"]
        self.layers = fields[f"{arch}.block_count"]
        self.heads = fields[f"{arch}.attention.head_count"]
        self.kv_heads = fields.get(f"{arch}.attention.head_count_kv", self.heads)
        self.eps = float(fields[f"{arch}.attention.layer_norm_rms_epsilon"])
        self.base = float(fields.get(f"{arch}.rope.freq_base", 10000.0))
        self.tokens = fields["tokenizer.ggml.tokens"]
        self.types = fields["tokenizer.ggml.token_type"]
        self.merges = {tuple(m.split(" ", 1)): rank for rank, m in enumerate(fields.get("tokenizer.ggml.merges", []))}
        self.add_bos = bool(fields.get("tokenizer.ggml.add_bos_token", False))
        self.bos = fields.get("tokenizer.ggml.bos_token_id")
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.w = {}
        for t in reader.tensors:
            values = dequantize(t.data, t.tensor_type).astype(np.float64)
            self.w[t.name] = values.reshape([int(d) for d in reversed(t.shape)])
        self.head_dim = self.w["blk.0.attn_q.weight"].shape[0] // self.heads

    # Tokenizer.

    def encode(self, text):
        if any(ord(c) > 127 for c in text):
            sys.exit("reference_llama.py: error: the reference tokenizer handles ASCII text only")
        table = bytes_to_unicode()
        pattern = r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+"
        ids = []
        for piece in re.findall(pattern, text):
            # Digits(individual_digits) runs first, so digits never join other characters.
            for part in re.split(r"([0-9])", piece):
                if part:
                    ids += self.bpe("".join(table[b] for b in part.encode()))
        return ([self.bos] if self.add_bos and self.bos is not None else []) + ids

    def bpe(self, word):
        symbols = list(word)
        while len(symbols) > 1:
            ranked = [(self.merges.get((a, b), math.inf), i) for i, (a, b) in enumerate(zip(symbols, symbols[1:]))]
            rank, i = min(ranked)
            if rank == math.inf:
                break
            symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]
        return [self.ids[s] for s in symbols]

    def decode_bytes(self, ids):
        inverse = {c: b for b, c in bytes_to_unicode().items()}
        out = bytearray()
        for i in ids:
            text = self.tokens[i]
            if self.types[i] in (2, 3, 4):
                out += text.encode()
            else:
                out += bytes(inverse[c] for c in text)
        return bytes(out)

    # Forward pass.

    def rms_norm(self, x, weight):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * weight

    def rope(self, x):
        n, _, d = x.shape
        freqs = self.base ** (-np.arange(0, d, 2) / d)
        angles = np.arange(n)[:, None] * freqs[None, :]
        cos, sin = np.cos(angles)[:, None, :], np.sin(angles)[:, None, :]
        even, odd = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = even * cos - odd * sin
        out[..., 1::2] = even * sin + odd * cos
        return out

    def logits(self, ids):
        """Logits of every position for `ids` run from position 0 with empty caches."""
        w, n, hd = self.w, len(ids), self.head_dim
        x = w["token_embd.weight"][ids]
        mask = np.triu(np.full((n, n), -np.inf), 1)
        for l in range(self.layers):
            p = f"blk.{l}."
            h = self.rms_norm(x, w[p + "attn_norm.weight"])
            q = self.rope((h @ w[p + "attn_q.weight"].T).reshape(n, self.heads, hd))
            k = self.rope((h @ w[p + "attn_k.weight"].T).reshape(n, self.kv_heads, hd))
            v = (h @ w[p + "attn_v.weight"].T).reshape(n, self.kv_heads, hd)
            out = np.empty((n, self.heads, hd))
            group = self.heads // self.kv_heads
            for head in range(self.heads):
                scores = q[:, head] @ k[:, head // group].T / math.sqrt(hd) + mask
                scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
                out[:, head] = (scores / scores.sum(axis=-1, keepdims=True)) @ v[:, head // group]
            x = x + out.reshape(n, self.heads * hd) @ w[p + "attn_output.weight"].T
            h = self.rms_norm(x, w[p + "ffn_norm.weight"])
            gate = h @ w[p + "ffn_gate.weight"].T
            up = h @ w[p + "ffn_up.weight"].T
            x = x + (gate / (1 + np.exp(-gate)) * up) @ w[p + "ffn_down.weight"].T
        x = self.rms_norm(x, w["output_norm.weight"])
        return x @ w.get("output.weight", w["token_embd.weight"]).T


def generate(model, args):
    ids = model.encode(args.prompt)
    generated = []
    for _ in range(args.n):
        next_id = int(np.argmax(model.logits(ids + generated)[-1]))
        if model.tokens[next_id] in END_OF_GENERATION and model.types[next_id] == 3:
            break
        generated.append(next_id)
    sys.stdout.buffer.write(model.decode_bytes(generated).decode("utf-8", errors="replace").encode() + b"\n")


def perplexity(model, text_file, ctx, score):
    with open(text_file, encoding="utf-8") as f:
        tokens = model.encode(f.read())
    windows = len(tokens) // ctx
    nll, scored = 0.0, 0
    for wi in range(windows):
        window = tokens[wi * ctx:(wi + 1) * ctx]
        logits = model.logits(window)
        first = ctx // 2 if score == "second-half" else 0
        for i in range(first, ctx - 1):
            row = logits[i]
            top = row.max()
            nll += math.log(np.exp(row - top).sum()) + top - row[window[i + 1]]
            scored += 1
    return math.exp(nll / max(scored, 1)), scored, windows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a .gguf file")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--prompt", required=True)
    g.add_argument("-n", type=int, default=8)
    for name in ("perplexity", "check-perplexity"):
        p = sub.add_parser(name)
        p.add_argument("--text", required=True)
        p.add_argument("--ctx", type=int, required=True)
        p.add_argument("--score", choices=["all", "second-half"], default="all")
        if name == "check-perplexity":
            p.add_argument("--nmc-output", required=True, help="what `nmc eval perplexity` printed")
            p.add_argument("--tolerance", type=float, default=1e-4, help="relative (default 1e-4)")
    args = parser.parse_args()
    model = Model(args.model)
    if args.command == "generate":
        generate(model, args)
        return
    value, scored, windows = perplexity(model, args.text, args.ctx, args.score)
    line = f"perplexity {value:.4f} over {scored} tokens ({windows} windows of {args.ctx})"
    if args.command == "perplexity":
        print(line)
        return
    with open(args.nmc_output, encoding="utf-8") as f:
        found = re.search(r"perplexity ([0-9.]+) over ([0-9]+) tokens \(([0-9]+) windows of ([0-9]+)", f.read())
    if not found:
        sys.exit(f"reference_llama.py: error: no perplexity line in {args.nmc_output}")
    theirs = float(found.group(1))
    counts = tuple(int(g) for g in found.groups()[1:])
    if counts != (scored, windows, args.ctx):
        sys.exit(f"reference_llama.py: error: nmc scored {counts[0]} tokens in {counts[1]} windows of {counts[2]}, "
                 f"the reference {scored} in {windows} windows of {args.ctx}")
    if abs(theirs - value) > args.tolerance * value:
        sys.exit(f"reference_llama.py: error: nmc's perplexity {theirs} differs from the reference {value:.6f} "
                 f"by more than {args.tolerance} relative")
    print(f"{line}: nmc agrees ({theirs})")


if __name__ == "__main__":
    main()
