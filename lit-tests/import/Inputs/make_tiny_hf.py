#!/usr/bin/env python3
"""Converts a GGUF written by make_tiny_llama.py into a Hugging Face folder of the same model.

The folder: config.json (LlamaForCausalLM), model.safetensors (written by hand: an 8-byte
little-endian header length, the JSON header padded with spaces to a multiple of 8, the data),
tokenizer.json (byte-level BPE, pre-tokenizer Sequence[Digits, ByteLevel], which is llama.cpp's
"smollm") and tokenizer_config.json (bos / eos tokens).

The weights are the gguf package's dequantization of the GGUF tensors, so that both files hold
one model: tensors that the GGUF stores as F16 are written as F16 (exactly), the rest as F32.
GGUF permutes the rows of attn_q / attn_k for llama.cpp's interleaved rotary embedding; they are
permuted back into Hugging Face's order (rotate-half), as convert_hf_to_gguf.py's inverse.

Damage for the error tests: --drop-field FIELD (leave a config.json field out), --set-field
FIELD=JSON, --missing NAME (leave a tensor out, by its Hugging Face name), --no-tokenizer,
--truncate-weights N (cut model.safetensors to N bytes).
"""

import argparse
import json
import os
import sys

try:
    import numpy as np
    import gguf
    from gguf.quants import dequantize
except ImportError as error:  # pragma: no cover - depends on the machine
    sys.stderr.write(
        f"make_tiny_hf.py: error: {error}; the lit tests under lit-tests/import need the Python "
        "packages 'gguf' and 'numpy' (pip install gguf numpy)\n")
    sys.exit(2)


def hf_name(name):
    fixed = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
             "output.weight": "lm_head.weight"}
    if name in fixed:
        return fixed[name]
    _, layer, part, _ = name.split(".")
    parts = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
             "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    return f"model.layers.{layer}.{parts[part]}.weight"


def unpermute(w, heads):
    """Inverse of convert_hf_to_gguf.py's LlamaModel.permute."""
    rows = w.shape[0]
    return w.reshape(heads, rows // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def field(reader, key):
    f = reader.fields[key]
    return f.contents()


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, array in tensors:
        data = np.ascontiguousarray(array).tobytes()
        dtype = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}[array.dtype]
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def convert(args):
    reader = gguf.GGUFReader(args.gguf)
    arch = field(reader, "general.architecture")
    heads = field(reader, f"{arch}.attention.head_count")
    kv_heads = field(reader, f"{arch}.attention.head_count_kv")
    tokens = field(reader, "tokenizer.ggml.tokens")
    types = field(reader, "tokenizer.ggml.token_type")
    merges = field(reader, "tokenizer.ggml.merges")
    bos = field(reader, "tokenizer.ggml.bos_token_id")
    eos = field(reader, "tokenizer.ggml.eos_token_id")
    names = {t.name for t in reader.tensors}

    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": field(reader, f"{arch}.embedding_length"),
        "intermediate_size": field(reader, f"{arch}.feed_forward_length"),
        "num_hidden_layers": field(reader, f"{arch}.block_count"),
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "rms_norm_eps": round(float(field(reader, f"{arch}.attention.layer_norm_rms_epsilon")), 9),
        "rope_theta": float(field(reader, f"{arch}.rope.freq_base")),
        "vocab_size": len(tokens),
        "max_position_embeddings": field(reader, f"{arch}.context_length"),
        "tie_word_embeddings": "output.weight" not in names,
        "bos_token_id": bos,
        "eos_token_id": eos,
        "hidden_act": "silu",
        "rope_scaling": None,
        "torch_dtype": "float32",
    }
    for name in args.drop_field:
        if name not in config:
            sys.exit(f"make_tiny_hf.py: error: --drop-field {name}: no such field (fields: {', '.join(config)})")
        del config[name]
    for assignment in args.set_field:
        name, _, value = assignment.partition("=")
        config[name] = json.loads(value)

    tensors = []
    all_names = [hf_name(t.name) for t in reader.tensors]
    for name in args.missing:
        if name not in all_names:
            sys.exit(f"make_tiny_hf.py: error: --missing {name}: no such tensor (tensors: {', '.join(all_names)})")
    for t in reader.tensors:
        name = hf_name(t.name)
        if name in args.missing:
            continue
        values = dequantize(t.data, t.tensor_type).astype(np.float32)
        values = values.reshape([int(d) for d in reversed(t.shape)])
        if t.name.endswith("attn_q.weight"):
            values = unpermute(values, heads)
        elif t.name.endswith("attn_k.weight"):
            values = unpermute(values, kv_heads)
        if t.tensor_type == gguf.GGMLQuantizationType.F16:
            values = values.astype(np.float16)
        tensors.append((name, values))

    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    weights = os.path.join(args.output, "model.safetensors")
    write_safetensors(weights, tensors)
    if args.truncate_weights is not None:
        os.truncate(weights, args.truncate_weights)
    if args.no_tokenizer:
        return
    special = [i for i, t in enumerate(types) if t == 3]
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i in special],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": [m.split(" ", 1) for m in merges]},
    }
    with open(os.path.join(args.output, "tokenizer.json"), "w") as f:
        json.dump(tokenizer, f, ensure_ascii=False)
    with open(os.path.join(args.output, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": tokens[bos], "eos_token": tokens[eos], "add_bos_token": False}, f)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gguf", help="a .gguf file written by make_tiny_llama.py")
    parser.add_argument("output", help="the folder to write")
    parser.add_argument("--drop-field", action="append", default=[], metavar="FIELD", help="leave FIELD out of config.json")
    parser.add_argument("--set-field", action="append", default=[], metavar="FIELD=JSON", help="set a config.json field")
    parser.add_argument("--missing", action="append", default=[], metavar="NAME", help="leave tensor NAME out")
    parser.add_argument("--no-tokenizer", action="store_true", help="write no tokenizer.json / tokenizer_config.json")
    parser.add_argument("--truncate-weights", type=int, metavar="N", help="cut model.safetensors to N bytes")
    convert(parser.parse_args())


if __name__ == "__main__":
    main()
