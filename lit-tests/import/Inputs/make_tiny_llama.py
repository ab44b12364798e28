#!/usr/bin/env python3
"""Writes a tiny, deterministic LLaMA model in GGUF for the `nmc import` lit tests.

The model: architecture "llama", 2 blocks, embedding 32, feed-forward 64, 4 heads, 2 KV heads
(head size 8), rope base 10000, RMS epsilon 1e-5, context 64; a byte-level BPE vocabulary
("gpt2" model, "smollm" pre-tokenizer) of 3 special tokens, the 256 GPT-2 byte tokens and a few
merged tokens. The weights are seeded numpy random values stored as F32 (norms), F16, Q8_0 and
Q4_0, so that the importer has to dequantize every one of those types:

    token_embd.weight         270x32  Q8_0     output_norm.weight       32  F32
    blk.N.attn_norm.weight        32  F32      blk.N.ffn_norm.weight    32  F32
    blk.N.attn_q.weight        32x32  Q4_0     blk.N.ffn_gate.weight 64x32  Q4_0
    blk.N.attn_k.weight        16x32  Q8_0     blk.N.ffn_up.weight   64x32  Q8_0
    blk.N.attn_v.weight        16x32  F16      blk.N.ffn_down.weight 32x64  F16
    blk.N.attn_output.weight   32x32  F16      output.weight (--untied) 270x32  F16

Shapes are written [out, in] (numpy order); GGUF stores the dimensions reversed.

Damage for the error tests: --truncate N (cut the file to N bytes; -N: drop the last N bytes;
"data": cut where the tensor data starts), --bad-magic, --version N (patch the version field),
--missing TENSOR (leave a tensor out), --transpose TENSOR (store a matrix with its dimensions
swapped), --drop-key KEY (leave a metadata key out), --arch NAME (another architecture).
"""

import argparse
import os
import sys

try:
    import numpy as np
    import gguf
    from gguf.quants import quantize
except ImportError as error:  # pragma: no cover - depends on the machine
    sys.stderr.write(
        f"make_tiny_llama.py: error: {error}; the lit tests under lit-tests/import need the Python "
        "packages 'gguf' and 'numpy' (pip install gguf numpy)\n")
    sys.exit(2)

ARCH = "llama"
BLOCKS = 2
EMBED = 32
FFN = 64
HEADS = 4
KV_HEADS = 2
HEAD_DIM = EMBED // HEADS
CONTEXT = 64

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Merges in priority order; each adds its merged token to the vocabulary.
MERGES = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "Ġ s", "r e", "a t", "Ġ o"]


def bytes_to_unicode():
    """GPT-2's byte → printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def vocabulary():
    tokens = list(SPECIAL)
    tokens += [bytes_to_unicode()[b] for b in range(256)]
    for merge in MERGES:
        left, right = merge.split(" ")
        merged = left + right
        assert merged not in tokens, merged
        tokens.append(merged)
    types = [3 if t in SPECIAL else 1 for t in tokens]
    return tokens, types


def tensor_plan(vocab, untied):
    """(name, [out, in], type) in file order."""
    Q = gguf.GGMLQuantizationType
    plan = [("token_embd.weight", [vocab, EMBED], Q.Q8_0)]
    for n in range(BLOCKS):
        p = f"blk.{n}."
        plan += [
            (p + "attn_norm.weight", [EMBED], Q.F32),
            (p + "attn_q.weight", [HEADS * HEAD_DIM, EMBED], Q.Q4_0),
            (p + "attn_k.weight", [KV_HEADS * HEAD_DIM, EMBED], Q.Q8_0),
            (p + "attn_v.weight", [KV_HEADS * HEAD_DIM, EMBED], Q.F16),
            (p + "attn_output.weight", [EMBED, HEADS * HEAD_DIM], Q.F16),
            (p + "ffn_norm.weight", [EMBED], Q.F32),
            (p + "ffn_gate.weight", [FFN, EMBED], Q.Q4_0),
            (p + "ffn_up.weight", [FFN, EMBED], Q.Q8_0),
            (p + "ffn_down.weight", [EMBED, FFN], Q.F16),
        ]
    plan.append(("output_norm.weight", [EMBED], Q.F32))
    if untied:
        plan.append(("output.weight", [vocab, EMBED], Q.F16))
    return plan


def write(args):
    tokens, types = vocabulary()
    rng = np.random.default_rng(args.seed)
    arch = args.arch
    writer = gguf.GGUFWriter(args.output, arch)
    keys = {}

    def key(name, add, *values):
        keys[name] = (add, values)

    key("general.name", writer.add_name, "tiny-llama")
    key(f"{arch}.block_count", writer.add_block_count, BLOCKS)
    key(f"{arch}.context_length", writer.add_context_length, CONTEXT)
    key(f"{arch}.embedding_length", writer.add_embedding_length, EMBED)
    key(f"{arch}.feed_forward_length", writer.add_feed_forward_length, FFN)
    key(f"{arch}.attention.head_count", writer.add_head_count, HEADS)
    key(f"{arch}.attention.head_count_kv", writer.add_head_count_kv, KV_HEADS)
    key(f"{arch}.rope.freq_base", writer.add_rope_freq_base, 10000.0)
    key(f"{arch}.attention.layer_norm_rms_epsilon", writer.add_layer_norm_rms_eps, 1e-5)
    key("tokenizer.ggml.model", writer.add_tokenizer_model, "gpt2")
    key("tokenizer.ggml.pre", writer.add_tokenizer_pre, "smollm")
    key("tokenizer.ggml.tokens", writer.add_token_list, tokens)
    key("tokenizer.ggml.token_type", writer.add_token_types, types)
    key("tokenizer.ggml.merges", writer.add_token_merges, MERGES)
    key("tokenizer.ggml.bos_token_id", writer.add_bos_token_id, SPECIAL.index("<|im_start|>"))
    key("tokenizer.ggml.eos_token_id", writer.add_eos_token_id, SPECIAL.index("<|im_end|>"))
    key("tokenizer.ggml.add_bos_token", writer.add_add_bos_token, False)
    for name in args.drop_key:
        if name not in keys:
            sys.exit(f"make_tiny_llama.py: error: --drop-key {name}: no such key (keys: {', '.join(keys)})")
        del keys[name]
    for add, values in keys.values():
        add(*values)

    plan = tensor_plan(len(tokens), args.untied)
    names = [name for name, _, _ in plan]
    for option, chosen in (("--missing", args.missing), ("--transpose", args.transpose)):
        for name in chosen:
            if name not in names:
                sys.exit(f"make_tiny_llama.py: error: {option} {name}: no such tensor (tensors: {', '.join(names)})")
    Q = gguf.GGMLQuantizationType
    for name, shape, qtype in plan:
        if len(shape) == 1:
            values = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            values = (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)
        if name in args.missing:
            continue  # drawn all the same, so the other tensors keep their values
        if name in args.transpose:
            values = np.ascontiguousarray(values.T)
        if qtype == Q.F32:
            writer.add_tensor(name, values)
        elif qtype == Q.F16:
            writer.add_tensor(name, values.astype(np.float16))
        else:
            writer.add_tensor(name, quantize(values, qtype), raw_dtype=qtype)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    with open(args.output, "r+b") as f:
        if args.bad_magic:
            f.write(b"GGML")
        if args.version is not None:
            f.seek(4)
            f.write(int(args.version).to_bytes(4, "little"))
    if args.truncate is not None:
        size = os.path.getsize(args.output)
        if args.truncate == "data":
            cut = gguf.GGUFReader(args.output).data_offset
        else:
            try:
                cut = int(args.truncate)
            except ValueError:
                sys.exit(f"make_tiny_llama.py: error: --truncate {args.truncate}: expected a number of bytes or 'data'")
            cut = size + cut if cut < 0 else cut
        if not 0 <= cut < size:
            sys.exit(f"make_tiny_llama.py: error: --truncate {args.truncate}: the file has {size} bytes")
        os.truncate(args.output, cut)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", help="the .gguf file to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights (default 0)")
    parser.add_argument("--untied", action="store_true", help="write an output.weight (else the embedding is tied)")
    parser.add_argument("--truncate", metavar="N", help="cut the file to N bytes (--truncate=-N: drop the last N; "
                        "'data': cut where the tensor data starts)")
    parser.add_argument("--bad-magic", action="store_true", help="write 'GGML' instead of the magic 'GGUF'")
    parser.add_argument("--version", type=int, metavar="N", help="patch the GGUF version field to N")
    parser.add_argument("--missing", action="append", default=[], metavar="TENSOR", help="leave TENSOR out")
    parser.add_argument("--transpose", action="append", default=[], metavar="TENSOR",
                        help="store TENSOR with its dimensions swapped")
    parser.add_argument("--arch", default=ARCH, help=f"general.architecture and the prefix of its keys (default {ARCH})")
    parser.add_argument("--drop-key", action="append", default=[], metavar="KEY", help="leave metadata KEY out")
    write(parser.parse_args())


if __name__ == "__main__":
    main()
