#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ (checked in; run again
after changing this script: `python3 fuzz/make_corpus.py`).

Every seed is small and synthetic: NMIR modules from the ir-specs examples, pipeline strings,
tiny GGUF files written with PyPI's `gguf` package (metadata of every value type, a tensor of
every supported ggml type, a LLaMA configuration with a byte-level BPE vocabulary), tiny
safetensors files with a config.json (single and sharded), tokenizer texts and id lists, and
small tokenizer.json files for each supported pre-tokenizer. No third-party model files.

Multi-file inputs (safetensors, tokenizer-json) join their files with SEPARATOR, as the fuzz
targets split them (fuzz/Sources/FuzzSupport).
"""

import glob
import json
import os
import re
import struct
import sys
import tempfile

try:
    import numpy as np
    import gguf
except ImportError as error:  # pragma: no cover - depends on the machine
    sys.exit(f"make_corpus.py: error: {error}; pip install gguf numpy")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
DICTS = os.path.join(ROOT, "fuzz", "dict")
SEPARATOR = b"\n%%NMC-FUZZ-NEXT-FILE%%\n"
RNG = np.random.default_rng(8)


def target_dir(name):
    """The target's corpus folder, emptied of generated seeds; inputs that once crashed a reader
    (regression-*, kept by hand, run by the unit tests) stay."""
    path = os.path.join(CORPUS, name)
    os.makedirs(path, exist_ok=True)
    for entry in os.listdir(path):
        if not entry.startswith("regression-"):
            os.remove(os.path.join(path, entry))
    return path


def write(directory, name, data):
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


# MARK: byte-level BPE vocabulary (GPT-2's byte alphabet)

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


SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r"]


def vocabulary():
    tokens = list(SPECIAL) + [bytes_to_unicode()[b] for b in range(256)]
    for merge in MERGES:
        left, right = merge.split(" ")
        tokens.append(left + right)
    types = [3 if t in SPECIAL else 1 for t in tokens]
    return tokens, types


# MARK: nmir

def nmir():
    out = target_dir("nmir")
    count = 0
    for spec in sorted(glob.glob(os.path.join(ROOT, "ir-specs", "*.md"))):
        text = open(spec, encoding="utf-8").read()
        for i, block in enumerate(re.findall(r"```nmir\n(.*?)```", text, re.S)):
            write(out, f"{os.path.basename(spec)[:-3]}-{i}.nmir", block)
            count += 1
    # NaN and infinities in weight data (NaN is unequal to itself: the target's round-trip
    # check compares the printed text, and == only where it is reflexive).
    write(out, "nan-values.nmir", """module {
  weights {
    @w : tensor<4xf32> = dense<[nan, inf, -inf, -0.0]>
  }
  func @f(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
    %n = nn.weight {name = @w} : tensor<4xf32>
    %0 = nn.rms_norm %x, %n {eps = 1.0e-05} : tensor<?x4xf32>
    return %0
  }
}
""")
    return count + 1


# MARK: pipeline

PIPELINES = [
    "",
    "canonicalize",
    "canonicalize,cse,dce,infer-shapes",
    "test-fail{op=nn.silu}",
    "nm-prune{n=2 m=4 method=wanda},quantize-int4{group=128},fuse-dequant-matmul,canonicalize",
    "nm-prune{n=1 m=8 method=sparsegpt damp=0.05 blocksize=64 include=\"blk.*.attn_q.weight,blk.?.ffn_*\" exclude=\"\"}",
    "nm-prune{nm=\"blk.0.*:1:4,blk.1.*:2:8\" method=magnitude}",
    "quantize-int4{group=64 symmetric=false method=gptq damp=0.01 blocksize=32 include=\"*\" exclude=output.weight}",
    "calibrate{file=\"text with spaces.txt\" samples=4 seq=16 hessian=true},nm-prune{method=sparsegpt}",
    "calibrate{file=\"a\\\"b\\\\c\\n\\t\\u{1F600}\"}",
    "  dce ,\tcse\n, canonicalize  ",
    "nm-prune{n=3 m=2}",
    "quantize-int4{group=0}",
    "unknown-pass{x=1}",
]


def pipeline():
    out = target_dir("pipeline")
    for i, text in enumerate(PIPELINES):
        write(out, f"pipeline-{i:02d}.txt", text)
    return len(PIPELINES)


# MARK: gguf

def write_gguf(path, arch, fill):
    writer = gguf.GGUFWriter(path, arch)
    fill(writer)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def raw_tensor(writer, name, qtype, rows, row_elements):
    """A tensor of `rows` rows of random bytes in ggml type `qtype` (scales may be any f16)."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    row_bytes = row_elements // block * size
    data = RNG.integers(0, 256, size=(rows, row_bytes), dtype=np.uint8)
    writer.add_tensor(name, data, raw_shape=(rows, row_bytes), raw_dtype=qtype)


def gguf_seeds():
    out = target_dir("gguf")
    Q = gguf.GGMLQuantizationType
    tokens, types = vocabulary()

    def llama(writer, with_tokenizer=True, pre="smollm", ffn=16):
        writer.add_name("tiny")
        writer.add_block_count(1)
        writer.add_context_length(16)
        writer.add_embedding_length(8)
        writer.add_feed_forward_length(ffn)
        writer.add_head_count(2)
        writer.add_head_count_kv(1)
        writer.add_rope_freq_base(10000.0)
        writer.add_layer_norm_rms_eps(1e-5)
        if with_tokenizer:
            writer.add_tokenizer_model("gpt2")
            writer.add_tokenizer_pre(pre)
            writer.add_token_list(tokens)
            writer.add_token_types(types)
            writer.add_token_merges(MERGES)
            writer.add_bos_token_id(1)
            writer.add_eos_token_id(2)
            writer.add_add_bos_token(True)
        else:
            writer.add_vocab_size(300)

    # A LLaMA configuration with a vocabulary, and a few small tensors.
    def model(writer):
        llama(writer)
        writer.add_tensor("output_norm.weight", RNG.standard_normal(8).astype(np.float32))
        writer.add_tensor("blk.0.attn_q.weight", RNG.standard_normal((8, 8)).astype(np.float16))
        raw_tensor(writer, "blk.0.attn_k.weight", Q.Q8_0, 1, 32)
    write_gguf(os.path.join(out, "llama-vocab.gguf"), "llama", model)

    # A whole model that imports: 1 block, embedding 8, feed-forward 32, vocab_size 4 (the embedding
    # has 4 rows, whatever the tokenizer's size), F32 / F16 / Q8_0 weights.
    def whole_model(writer):
        llama(writer, ffn=32)
        writer.add_vocab_size(4)
        for name, shape, kind in [("token_embd.weight", (4, 8), "f16"), ("blk.0.attn_norm.weight", (8,), "f32"),
                                  ("blk.0.attn_q.weight", (8, 8), "f16"), ("blk.0.attn_k.weight", (4, 8), "f32"),
                                  ("blk.0.attn_v.weight", (4, 8), "f16"), ("blk.0.attn_output.weight", (8, 8), "f16"),
                                  ("blk.0.ffn_norm.weight", (8,), "f32"), ("blk.0.ffn_gate.weight", (32, 8), "f16"),
                                  ("blk.0.ffn_up.weight", (32, 8), "f16"), ("output_norm.weight", (8,), "f32")]:
            values = RNG.standard_normal(shape).astype(np.float32)
            writer.add_tensor(name, values if kind == "f32" else values.astype(np.float16))
        raw_tensor(writer, "blk.0.ffn_down.weight", Q.Q8_0, 8, 32)
    write_gguf(os.path.join(out, "llama-model.gguf"), "llama", whole_model)

    for pre in ["gpt2", "llama-bpe", "qwen2"]:
        write_gguf(os.path.join(out, f"llama-vocab-{pre}.gguf"), "llama", lambda w, p=pre: llama(w, pre=p))

    # A configuration without a vocabulary, and another architecture.
    write_gguf(os.path.join(out, "llama-config.gguf"), "llama", lambda w: llama(w, with_tokenizer=False))
    write_gguf(os.path.join(out, "other-arch.gguf"), "gpt2", lambda w: w.add_name("x"))

    # One tensor of every type NMC dequantizes, each as small as its block allows.
    def every_type(writer):
        writer.add_tensor("f32", RNG.standard_normal((2, 4)).astype(np.float32))
        writer.add_tensor("f16", RNG.standard_normal((2, 4)).astype(np.float16))
        raw_tensor(writer, "bf16", Q.BF16, 2, 4)
        for qtype in [Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0]:
            raw_tensor(writer, qtype.name.lower(), qtype, 1, 32)
        for qtype in [Q.Q4_K, Q.Q5_K, Q.Q6_K]:
            raw_tensor(writer, qtype.name.lower(), qtype, 1, 256)
        raw_tensor(writer, "q2_k-unsupported", Q.Q2_K, 1, 256)
        writer.add_tensor("empty", np.zeros((0, 4), dtype=np.float32))
        writer.add_tensor("four-dims", RNG.standard_normal((1, 2, 1, 2)).astype(np.float32))
    write_gguf(os.path.join(out, "every-type.gguf"), "llama", every_type)

    # Metadata of every value type, nested arrays included, and a custom alignment.
    def every_value(writer):
        writer.add_uint32("general.alignment", 64)
        writer.add_uint8("t.u8", 200)
        writer.add_int8("t.i8", -100)
        writer.add_uint16("t.u16", 60000)
        writer.add_int16("t.i16", -30000)
        writer.add_uint32("t.u32", 4000000000)
        writer.add_int32("t.i32", -2000000000)
        writer.add_float32("t.f32", 1.5)
        writer.add_uint64("t.u64", 2**63 + 5)
        writer.add_int64("t.i64", -(2**62))
        writer.add_float64("t.f64", 1e-300)
        writer.add_bool("t.bool", True)
        writer.add_string("t.str", "héllo\u0000wörld")
        writer.add_array("t.arr.i32", [1, -2, 3])
        writer.add_array("t.arr.str", ["a", "", "ĠThe"])
        writer.add_array("t.arr.f32", [0.5, -1.0])
        writer.add_array("t.arr.bool", [True, False])
        writer.add_array("t.arr.nested", [[1, 2], [3]])
        writer.add_array("t.arr.long", list(range(20)))
        writer.add_array("tokenizer.ggml.token_type", [1, 2, 3])
        writer.add_key_value("t.arr.u64", [2**40, 7], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.UINT64)
        writer.add_tensor("aligned", RNG.standard_normal(4).astype(np.float32))
    write_gguf(os.path.join(out, "every-value.gguf"), "llama", every_value)

    # Damaged: version 2, truncated, bad magic.
    base = open(os.path.join(out, "llama-config.gguf"), "rb").read()
    write(out, "version2.gguf", base[:4] + struct.pack("<I", 2) + base[8:])
    write(out, "truncated.gguf", base[: len(base) // 2])
    write(out, "bad-magic.gguf", b"GGML" + base[4:])
    return len([e for e in os.listdir(out) if not e.startswith("regression-")])


# MARK: safetensors

def safetensors_bytes(tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8, "intermediate_size": 16,
    "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0, "vocab_size": 300, "max_position_embeddings": 16, "tie_word_embeddings": True,
    "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": [2, 0], "rope_scaling": None,
    "attention_bias": False, "torch_dtype": "float32",
}


def safetensors_seeds():
    out = target_dir("safetensors")
    f32 = RNG.standard_normal((2, 3)).astype(np.float32).tobytes()
    f16 = RNG.standard_normal(4).astype(np.float16).tobytes()
    tensors = [
        ("model.norm.weight", "F32", [2, 3], f32),
        ("model.layers.0.input_layernorm.weight", "F16", [4], f16),
        ("bf16", "BF16", [2], bytes([0x80, 0x3F, 0x00, 0xC0])),
        ("i8", "I8", [3], bytes([1, 0xFF, 0x80])),
        ("i32", "I32", [1, 1], struct.pack("<i", -7)),
        ("u8", "U8", [2], bytes([1, 2])),
        ("empty", "F32", [0, 5], b""),
        ("scalar", "F32", [], struct.pack("<f", 2.5)),
    ]
    config = json.dumps(CONFIG, indent=1).encode()
    single = safetensors_bytes(tensors, {"format": "pt"})
    write(out, "single.bin", config + SEPARATOR + single)

    # Sharded: config, shard 1, index, shard 2.
    shard1 = safetensors_bytes(tensors[:2])
    shard2 = safetensors_bytes(tensors[2:4])
    index = {"metadata": {"total_size": 0}, "weight_map": {
        **{t[0]: "model-00001-of-00002.safetensors" for t in tensors[:2]},
        **{t[0]: "model-00002-of-00002.safetensors" for t in tensors[2:4]}}}
    write(out, "sharded.bin", config + SEPARATOR + shard1 + SEPARATOR + json.dumps(index).encode() + SEPARATOR + shard2)

    # Configuration variants (a model_type only, head_dim given, eos a number) with one tensor.
    variant = dict(CONFIG)
    del variant["architectures"]
    variant.update({"head_dim": 4, "eos_token_id": 2, "tie_word_embeddings": False})
    write(out, "config-variant.bin", json.dumps(variant).encode() + SEPARATOR + safetensors_bytes(tensors[:1]))
    write(out, "config-only.bin", json.dumps(CONFIG).encode())

    # A whole model that imports (vocab_size 4), weights in F32, F16 and BF16, lm_head untied.
    config = dict(CONFIG, vocab_size=4, tie_word_embeddings=False)
    shapes = {"model.embed_tokens.weight": (4, 8), "model.layers.0.input_layernorm.weight": (8,),
              "model.layers.0.self_attn.q_proj.weight": (8, 8), "model.layers.0.self_attn.k_proj.weight": (4, 8),
              "model.layers.0.self_attn.v_proj.weight": (4, 8), "model.layers.0.self_attn.o_proj.weight": (8, 8),
              "model.layers.0.post_attention_layernorm.weight": (8,), "model.layers.0.mlp.gate_proj.weight": (16, 8),
              "model.layers.0.mlp.up_proj.weight": (16, 8), "model.layers.0.mlp.down_proj.weight": (8, 16),
              "model.norm.weight": (8,), "lm_head.weight": (4, 8)}
    weights = []
    for i, (name, shape) in enumerate(shapes.items()):
        values = RNG.standard_normal(shape).astype(np.float32)
        if i % 3 == 0:
            weights.append((name, "F32", shape, values.tobytes()))
        elif i % 3 == 1:
            weights.append((name, "F16", shape, values.astype(np.float16).tobytes()))
        else:
            weights.append((name, "BF16", shape, (values.view(np.uint32) >> 16).astype(np.uint16).tobytes()))
    write(out, "whole-model.bin", json.dumps(config).encode() + SEPARATOR + safetensors_bytes(weights))
    return len([e for e in os.listdir(out) if not e.startswith("regression-")])


# MARK: tokenizer (fixed vocabulary; first byte: grammar & flags, see FuzzTokenizer.swift)

TEXTS = [
    "Hello, world! The theater is in there.",
    "  leading spaces\n\nand\ttabs\r\n  ",
    "numbers 1234567 12 3.14 ١٢٣",
    "<|im_start|>user\nhi<|im_end|><user><|endoftext|>",
    "unicode: héllo wörld 東京 🙂 e\u0301",
    "I'm you're they'll we'd it's DON'T",
    "",
]


def tokenizer_seeds():
    out = target_dir("tokenizer")
    n = 0
    for grammar in range(4):
        for i, text in enumerate(TEXTS):
            mode = grammar | (4 if i % 2 == 0 else 0) | (8 if i == 3 else 0)
            write(out, f"text-{grammar}-{i}.bin", bytes([mode]) + text.encode())
            n += 1
    ids = [0, 1, 2, 3, 65, 255, 258, 259, 263, 264, 265, -1, 2**31 - 1, -(2**31)]
    write(out, "ids.bin", bytes([32 | 16]) + b"".join(struct.pack("<i", i) for i in ids))
    write(out, "ids-bytes.bin", bytes([33]) + bytes([0xE6, 0x9D, 0xB1, 0x00, 0x41, 0x00, 0x00, 0x00]))
    return n + 2


# MARK: tokenizer-json

PRE_TOKENIZERS = {
    "gpt2": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    "smollm": {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
    "llama-bpe": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"},
         "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
    "qwen2": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"},
         "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
}


def tokenizer_json_seeds():
    out = target_dir("tokenizer-json")
    tokens, _ = vocabulary()
    vocab = {t: i for i, t in enumerate(tokens) if t not in SPECIAL}
    added = [{"id": tokens.index(t), "content": t, "special": True, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False} for t in SPECIAL]
    config = json.dumps({"bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"},
                         "add_bos_token": True}).encode()
    for i, (name, pre) in enumerate(PRE_TOKENIZERS.items()):
        merges = MERGES if i % 2 == 0 else [m.split(" ") for m in MERGES]
        model = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                 "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                 "ignore_merges": name == "llama-bpe", "vocab": vocab, "merges": merges}
        document = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
                    "normalizer": None, "pre_tokenizer": pre, "post_processor": None, "decoder": None,
                    "model": model}
        text = json.dumps(document, ensure_ascii=(i % 2 == 1), separators=(",", ":")).encode()
        write(out, f"tokenizer-{name}.json", text + (SEPARATOR + config if i < 2 else b""))
    write(out, "not-bpe.json", json.dumps({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}))
    return len([e for e in os.listdir(out) if not e.startswith("regression-")])


# MARK: dictionaries (libFuzzer -dict: tokens a mutation inserts whole)

def dict_entry(token):
    if isinstance(token, str):
        token = token.encode()
    out = "".join(chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else f"\\x{b:02x}" for b in token)
    return f'"{out}"'


def write_dict(name, tokens):
    os.makedirs(DICTS, exist_ok=True)
    unique = sorted({t.encode() if isinstance(t, str) else t for t in tokens if t and len(t) <= 64})
    with open(os.path.join(DICTS, f"{name}.dict"), "w") as f:
        f.write(f"# libFuzzer dictionary for fuzz-{name}; written by fuzz/make_corpus.py\n")
        for token in unique:
            f.write(dict_entry(token) + "\n")
    return len(unique)


JSON_TOKENS = ["{", "}", "[", "]", ":", ",", "null", "true", "false", "-1", "1e999", "0.5", '""', "\\u0000", "\\ud800"]


def dictionaries():
    # NMIR: every word and punctuation of the ir-specs examples, and the lexical extras.
    words = set()
    for spec in glob.glob(os.path.join(ROOT, "ir-specs", "*.md")):
        for block in re.findall(r"```(?:nmir|text)\n(.*?)```", open(spec, encoding="utf-8").read(), re.S):
            words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*|[%@][A-Za-z0-9_.$-]+|->|[{}<>()\[\],:=?]", block))
    words.update(["module", "attributes", "weights", "func", "return", "dense<", "elided", "tensor<", "quant.packed<",
                  "kv_cache<", "nm = ", "inf", "-inf", "nan", "1.0e-05", "// -----", '@"', "\\u{", "0x", "?x", "\n"])
    write_dict("nmir", words)
    # Pipelines: pass and option names, and option values.
    write_dict("pipeline", ["canonicalize", "cse", "dce", "infer-shapes", "test-fail", "nm-prune", "quantize-int4",
                            "fuse-dequant-matmul", "calibrate", "n=", "m=", "method=", "include=", "exclude=", "nm=",
                            "damp=", "blocksize=", "group=", "symmetric=", "file=", "samples=", "seq=", "hessian=",
                            "op=", "magnitude", "wanda", "sparsegpt", "rtn", "gptq", "true", "false", "{", "}", ",",
                            '"', "\\", "\\u{", "2:4", "*", "?", "1e308", "-0.0", "nan", "inf", "9223372036854775808"])
    # GGUF: the magic, the keys the readers look up, small little-endian integers.
    gguf_keys = ["general.architecture", "general.alignment", "general.name", "llama.block_count",
                 "llama.context_length", "llama.embedding_length", "llama.feed_forward_length",
                 "llama.attention.head_count", "llama.attention.head_count_kv", "llama.attention.key_length",
                 "llama.attention.layer_norm_rms_epsilon", "llama.rope.freq_base", "llama.vocab_size",
                 "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
                 "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                 "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token", "output.weight", "gpt2",
                 "smollm", "llama-bpe", "qwen2", "llama"]
    ints = [struct.pack("<I", v) for v in [0, 1, 2, 3, 4, 8, 9, 12, 14, 15, 16, 30, 32, 256, 0xFFFFFFFF]]
    ints += [struct.pack("<Q", v) for v in [0, 1, 32, 2**31, 2**40, 2**63, 2**64 - 1]]
    write_dict("gguf", [b"GGUF"] + [struct.pack("<Q", len(k)) + k.encode() for k in gguf_keys] + gguf_keys + ints)
    # Safetensors and config.json: header fields, dtypes, config keys.
    config_keys = list(CONFIG) + ["head_dim", "mlp_bias", "weight_map", "metadata"]
    write_dict("safetensors", ['"dtype"', '"shape"', '"data_offsets"', '"__metadata__"', '"F32"', '"F16"', '"BF16"',
                               '"I8"', '"I32"', '"U8"', '"I64"', '"F64"', '"BOOL"', '"LlamaForCausalLM"', '"llama"',
                               '"silu"', "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                               SEPARATOR, struct.pack("<Q", 0), struct.pack("<Q", 2**63)]
               + [f'"{k}"' for k in config_keys] + JSON_TOKENS)
    # tokenizer.json and tokenizer_config.json fields.
    write_dict("tokenizer-json", ['"model"', '"type"', '"BPE"', '"vocab"', '"merges"', '"added_tokens"', '"id"',
                                  '"content"', '"special"', '"pre_tokenizer"', '"ByteLevel"', '"Sequence"',
                                  '"pretokenizers"', '"Digits"', '"individual_digits"', '"Split"', '"pattern"',
                                  '"Regex"', '"behavior"', '"Isolated"', '"invert"', '"use_regex"',
                                  '"add_prefix_space"', '"unk_token"', '"ignore_merges"', '"byte_fallback"',
                                  '"continuing_subword_prefix"', '"end_of_word_suffix"', '"normalizer"',
                                  '"bos_token"', '"eos_token"', '"add_bos_token"', '"Unigram"', '"Ġ"', "2147483646",
                                  SEPARATOR] + JSON_TOKENS)
    # Tokenizer texts: the special tokens, contractions, digits, whitespace runs, odd Unicode.
    write_dict("tokenizer", SPECIAL + ["<user>", "'s", "'RE", "'ll", "123", " \n", "\r\n", "  ", "\t", "é", "東",
                                       "🙂", "\u0301", "\u00a0", "\u2028", "١", "the", " the", b"\xff", b"\xc0"])


def main():
    dictionaries()
    counts = {
        "nmir": nmir(),
        "pipeline": pipeline(),
        "gguf": gguf_seeds(),
        "safetensors": safetensors_seeds(),
        "tokenizer": tokenizer_seeds(),
        "tokenizer-json": tokenizer_json_seeds(),
    }
    total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(CORPUS, "*", "*")))
    for name, n in counts.items():
        print(f"{name}: {n} seeds")
    print(f"total: {total} bytes")


if __name__ == "__main__":
    main()
