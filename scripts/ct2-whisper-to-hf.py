#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Converts a Whisper model in CTranslate2's format (faster-whisper's
model.bin + config.json + tokenizer.json) into a Hugging Face Whisper
folder that mm (and transformers) load:

    config.json               dims from the tensor shapes
    model.safetensors         F16 (or F32), int8/int16 weights dequantised
    generation_config.json    special ids and the suppression lists
    preprocessor_config.json  Whisper's log-mel settings (80 or 128 bins)
    tokenizer.json            as shipped
    tokenizer_config.json     the special tokens, for transformers

    ct2-whisper-to-hf.py SRC DST [--dtype auto|f16|f32]
                                 [--multilingual auto|yes|no]
                                 [--model-bin PART [PART ...]]

SRC holds config.json and tokenizer.json, and model.bin unless
--model-bin names the file (or the parts of a split file, in order).
Needs Python 3 and numpy only; used by scripts/fetch-real-models.sh.

CTranslate2's model.bin (python/ctranslate2/specs/model_spec.py, _serialize;
src/models/model.cc reads it), little-endian:

    u32 binary_version                     (1 .. 6)
    str spec_name, u32 spec_revision       (version >= 2)
    u32 n_variables, then per variable:
        str name, u8 rank, u32 dims[rank],
        u8 dtype (float32 int8 int16 int32 float16 bfloat16)
        u32 n_bytes, payload               (version >= 4; before: u8 item
                                            size, u32 n_items)
    u32 n_aliases, then (str alias, str target) pairs  (version >= 3)
    str = u16 length including a NUL, bytes, NUL

Whisper's variables (specs/whisper_spec.py + transformer_spec.py; the
transformers converter, converters/transformers.py WhisperLoader/BartLoader,
maps them from transformers' names without transposes):

    encoder/conv{1,2}/{weight,bias}          model.encoder.conv{1,2}
    encoder/position_encodings/encodings     model.encoder.embed_positions
    encoder/layer_I/self_attention/linear_0  q, k, v fused on rows (k's bias
                                             is zeros: Whisper has none)
    .../self_attention/linear_1              self_attn.out_proj
    .../self_attention/layer_norm            self_attn_layer_norm
    .../ffn/linear_{0,1}, ffn/layer_norm     fc1, fc2, final_layer_norm
    decoder/embeddings/weight                model.decoder.embed_tokens
    decoder/layer_I/attention/linear_0       encoder_attn.q_proj
    decoder/layer_I/attention/linear_1       encoder_attn.k_proj, v_proj
    decoder/layer_I/attention/linear_2       encoder_attn.out_proj
    decoder/layer_I/attention/layer_norm     encoder_attn_layer_norm
    decoder/projection/weight                proj_out (an alias of the
                                             embeddings when tied)
    {encoder,decoder}/layer_norm             the final LayerNorms
    gamma/beta                               weight/bias

Quantised weights carry NAME_scale: int8 per output row (value * scale
rounded, so weight = int8 / scale), int16 one scalar; aliases also alias
the scale.

generation_config.json: suppress_tokens / begin_suppress_tokens are the
CTranslate2 config's suppress_ids / suppress_ids_begin (its converter
copies them from transformers' generation config).  When they are absent
they are derived as openai/whisper does (tokenizer.py non_speech_tokens
plus decoding.py's task and start tokens; SuppressBlank's " " and end
token).  A model is multilingual when its vocabulary has 51865 tokens or
more (openai/whisper's rule; --multilingual overrides it for toy models);
only then lang_to_id and task_to_id are written.  max_initial_timestamp_index is 50 (openai's 1.0 s at 0.02 s).
forced_decoder_ids are those of the Hugging Face releases (transformers'
generate() leaves out the task token of a multilingual model without
them).
"""

import argparse
import json
import os
import re
import shutil
import struct
import sys

import numpy as np

CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
ITEM_DTYPES = {1: "int8", 2: "float16", 4: "float32"}  # binary version < 4
GELU = 3  # common_spec.Activation.GELU


class ConvertError(Exception):
    pass


# ---------------------------------------------------------------- model.bin


class Reader:
    def __init__(self, data):
        self.d = data
        self.o = 0

    def take(self, n):
        if self.o + n > len(self.d):
            raise ConvertError("model.bin is truncated at byte %d" % self.o)
        b = self.d[self.o:self.o + n]
        self.o += n
        return b

    def u(self, fmt):
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def s(self):
        n = self.u("H")
        b = self.take(n)
        if n == 0 or b[-1] != 0:
            raise ConvertError("model.bin: bad string at byte %d" % self.o)
        return b[:-1].decode("utf-8")


def read_ct2(data):
    """-> (spec name, revision, {name: ndarray}, {alias: target})"""
    r = Reader(data)
    version = r.u("I")
    if not 1 <= version <= 6:
        raise ConvertError("model.bin: binary version %d is not 1 to 6"
                           % version)
    spec, revision = "", 1
    if version >= 2:
        spec = r.s()
        revision = r.u("I")
    variables = {}
    for _ in range(r.u("I")):
        name = r.s()
        shape = tuple(r.u("I") for _ in range(r.u("B")))
        if version >= 4:
            t = r.u("B")
            if t >= len(CT2_DTYPES):
                raise ConvertError("%s: unknown dtype id %d" % (name, t))
            dtype = CT2_DTYPES[t]
            n_bytes = r.u("I")
        else:
            size = r.u("B")
            if size not in ITEM_DTYPES:
                raise ConvertError("%s: item size %d" % (name, size))
            dtype = ITEM_DTYPES[size]
            n_bytes = r.u("I") * size
        raw = r.take(n_bytes)
        if dtype == "bfloat16":
            a = (np.frombuffer(raw, "<u2").astype("<u4") << 16).view("<f4")
        else:
            a = np.frombuffer(raw, np.dtype(dtype).newbyteorder("<"))
        if a.size != int(np.prod(shape, dtype=np.int64)):
            raise ConvertError("%s: %d bytes for shape %s (%s)"
                               % (name, n_bytes, shape, dtype))
        variables[name] = a.reshape(shape)
    aliases = {}
    if version >= 3:
        for _ in range(r.u("I")):
            alias = r.s()
            aliases[alias] = r.s()
    if r.o != len(data):
        raise ConvertError("model.bin: %d trailing bytes" % (len(data) - r.o))
    return spec, revision, variables, aliases


class Weights:
    """The variables of a model.bin, aliases resolved, dequantised."""

    def __init__(self, variables, aliases):
        self.v = variables
        self.aliases = aliases
        self.used = set()

    def resolve(self, name):
        seen = set()
        while name not in self.v and name in self.aliases:
            if name in seen:
                raise ConvertError("alias loop at %s" % name)
            seen.add(name)
            name = self.aliases[name]
        return name

    def has(self, name):
        return self.resolve(name) in self.v

    def raw(self, name):
        real = self.resolve(name)
        if real not in self.v:
            raise ConvertError("model.bin has no %s" % name)
        self.used.add(real)
        return self.v[real]

    def scalar(self, name, default=None):
        if not self.has(name):
            if default is None:
                raise ConvertError("model.bin has no %s" % name)
            return default
        a = self.raw(name)
        if a.size != 1:
            raise ConvertError("%s is not a scalar" % name)
        return a.reshape(-1)[0].item()

    def get(self, name):
        """float32; NAME_scale (through NAME's alias too) dequantises."""
        a = self.raw(name)
        real = self.resolve(name)
        scale = None
        for cand in (name + "_scale", real + "_scale"):
            if self.has(cand):
                scale = self.raw(cand).astype(np.float32)
                break
        if a.dtype in (np.int8, np.int16) and scale is None:
            raise ConvertError("%s is %s without a scale" % (name, a.dtype))
        a = a.astype(np.float32)
        if scale is not None:
            if scale.size == 1:
                a = a / scale.reshape(())
            elif scale.shape[0] == a.shape[0]:
                a = a / scale.reshape((-1,) + (1,) * (a.ndim - 1))
            else:
                raise ConvertError("%s: scale %s for %s" % (name, scale.shape,
                                                            a.shape))
        return a

    def unused(self):
        return sorted(n for n in self.v
                      if n not in self.used and not n.endswith("_scale"))


# ------------------------------------------------------------- tensor names


def expect(name, a, shape):
    if tuple(a.shape) != tuple(shape):
        raise ConvertError("%s is %s, not %s" % (name, tuple(a.shape),
                                                 tuple(shape)))
    return a


def norm(W, out, src, dst, d):
    out[dst + ".weight"] = expect(src, W.get(src + "/gamma"), (d,))
    out[dst + ".bias"] = expect(src, W.get(src + "/beta"), (d,))


def linear(W, out, src, dst, n_out, n_in, bias=True):
    out[dst + ".weight"] = expect(src, W.get(src + "/weight"), (n_out, n_in))
    if bias:
        out[dst + ".bias"] = expect(src, W.get(src + "/bias"), (n_out,))


def split_rows(W, out, src, dsts, d):
    """A fused projection [len(dsts) * d, d] into q/k/v; k has no bias."""
    w = expect(src, W.get(src + "/weight"), (len(dsts) * d, d))
    b = expect(src, W.get(src + "/bias"), (len(dsts) * d,))
    for i, dst in enumerate(dsts):
        out[dst + ".weight"] = w[i * d:(i + 1) * d]
        bi = b[i * d:(i + 1) * d]
        if dst.endswith("k_proj"):
            if np.any(bi != 0):
                raise ConvertError("%s: k_proj has a non-zero bias" % src)
        else:
            out[dst + ".bias"] = bi


def self_attention(W, out, src, dst, d):
    """A layer's self-attention: CT2's fused QKV, output and its norm."""
    split_rows(W, out, src + "self_attention/linear_0",
               [dst + "self_attn." + p for p in ("q_proj", "k_proj",
                                                 "v_proj")], d)
    linear(W, out, src + "self_attention/linear_1", dst + "self_attn.out_proj",
           d, d)
    norm(W, out, src + "self_attention/layer_norm",
         dst + "self_attn_layer_norm", d)


def ffn(W, out, src, dst, d, f):
    """A layer's feed-forward block (d -> f -> d) and its norm."""
    linear(W, out, src + "ffn/linear_0", dst + "fc1", f, d)
    linear(W, out, src + "ffn/linear_1", dst + "fc2", d, f)
    norm(W, out, src + "ffn/layer_norm", dst + "final_layer_norm", d)


def n_layers(W, stack):
    n = 0
    while W.has("%s/layer_%d/ffn/linear_0/weight" % (stack, n)):
        n += 1
    if n == 0:
        raise ConvertError("model.bin has no %s layers" % stack)
    return n


def convert_weights(W):
    """-> (hparams, {hf name: float32 array})"""
    out = {}
    conv1 = W.get("encoder/conv1/weight")
    if conv1.ndim != 3 or conv1.shape[2] != 3:
        raise ConvertError("encoder/conv1/weight is %s" % (conv1.shape,))
    d, n_mels = conv1.shape[0], conv1.shape[1]
    emb = W.get("decoder/embeddings/weight")
    vocab = expect("decoder/embeddings/weight", emb, (emb.shape[0], d)).shape[0]
    enc_pos = W.get("encoder/position_encodings/encodings")
    dec_pos = W.get("decoder/position_encodings/encodings")
    hp = {
        "d_model": d, "num_mel_bins": n_mels, "vocab_size": vocab,
        "max_source_positions": expect("encoder positions", enc_pos,
                                       (enc_pos.shape[0], d)).shape[0],
        "max_target_positions": expect("decoder positions", dec_pos,
                                       (dec_pos.shape[0], d)).shape[0],
        "encoder_layers": n_layers(W, "encoder"),
        "decoder_layers": n_layers(W, "decoder"),
        "encoder_attention_heads": int(W.scalar("encoder/num_heads")),
        "decoder_attention_heads": int(W.scalar("decoder/num_heads")),
        "encoder_ffn_dim": W.raw("encoder/layer_0/ffn/linear_0/weight").shape[0],
        "decoder_ffn_dim": W.raw("decoder/layer_0/ffn/linear_0/weight").shape[0],
    }
    # what the decoder spec says about itself: Whisper's choices only
    for key, want in (("decoder/pre_norm", 1), ("decoder/activation", GELU),
                      ("decoder/alibi", 0),
                      ("decoder/start_from_zero_embedding", 0)):
        got = W.scalar(key, want)
        if got != want:
            raise ConvertError("%s is %s, not Whisper's %s" % (key, got, want))
    hp["scale_embedding"] = bool(W.scalar("decoder/scale_embeddings", 0))
    for key in ("decoder/alignment_heads", "decoder/alignment_layer",
                "decoder/alibi_use_positive_positions", "decoder/scale_alibi"):
        W.scalar(key, 0)  # known, not needed (word alignment; no ALiBi)

    ef, df = hp["encoder_ffn_dim"], hp["decoder_ffn_dim"]
    e = "model.encoder."
    out[e + "conv1.weight"] = conv1
    out[e + "conv1.bias"] = expect("conv1", W.get("encoder/conv1/bias"), (d,))
    out[e + "conv2.weight"] = expect("conv2", W.get("encoder/conv2/weight"),
                                     (d, d, 3))
    out[e + "conv2.bias"] = expect("conv2", W.get("encoder/conv2/bias"), (d,))
    out[e + "embed_positions.weight"] = enc_pos
    norm(W, out, "encoder/layer_norm", e + "layer_norm", d)
    for i in range(hp["encoder_layers"]):
        s, t = "encoder/layer_%d/" % i, e + "layers.%d." % i
        self_attention(W, out, s, t, d)
        ffn(W, out, s, t, d, ef)

    m = "model.decoder."
    out[m + "embed_tokens.weight"] = emb
    out[m + "embed_positions.weight"] = dec_pos
    norm(W, out, "decoder/layer_norm", m + "layer_norm", d)
    for i in range(hp["decoder_layers"]):
        s, t = "decoder/layer_%d/" % i, m + "layers.%d." % i
        self_attention(W, out, s, t, d)
        linear(W, out, s + "attention/linear_0", t + "encoder_attn.q_proj", d, d)
        split_rows(W, out, s + "attention/linear_1",
                   [t + "encoder_attn.k_proj", t + "encoder_attn.v_proj"], d)
        linear(W, out, s + "attention/linear_2", t + "encoder_attn.out_proj",
               d, d)
        norm(W, out, s + "attention/layer_norm",
             t + "encoder_attn_layer_norm", d)
        ffn(W, out, s, t, d, df)

    proj = "decoder/projection/weight"
    hp["tie_word_embeddings"] = (W.resolve(proj) == "decoder/embeddings/weight"
                                 and not W.has(proj + "_scale")) \
        or not W.has(proj)
    if not hp["tie_word_embeddings"]:
        out["proj_out.weight"] = expect(proj, W.get(proj), (vocab, d))
    if W.has("decoder/projection/bias"):
        if np.any(W.get("decoder/projection/bias") != 0):
            raise ConvertError("decoder/projection/bias is not zero")
    left = W.unused()
    flags = [n for n in left if W.raw(n).ndim == 0]
    if flags:  # options of later CTranslate2 versions: say so, go on
        print("ct2-whisper-to-hf: ignored: " + ", ".join(
            "%s=%s" % (n, W.raw(n).item()) for n in flags), file=sys.stderr)
    tensors = [n for n in left if n not in flags]
    if tensors:
        raise ConvertError("tensors not understood: " + ", ".join(tensors))
    return hp, out


# ---------------------------------------------------------------- tokenizer


def bytes_to_unicode():
    """GPT-2's byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + \
        list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


class Bpe:
    """Byte-level BPE over tokenizer.json, for short strings of one
    pre-token (punctuation runs, as in non_speech_tokens)."""

    def __init__(self, tok):
        model = tok["model"]
        self.vocab = model["vocab"]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
                  for m in model["merges"]]
        self.rank = {m: i for i, m in enumerate(merges)}
        self.b2u = bytes_to_unicode()

    def encode(self, text):
        parts = [self.b2u[b] for b in text.encode("utf-8")]
        while len(parts) > 1:
            pairs = [(self.rank.get((a, b), 1 << 30), i)
                     for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            r, i = min(pairs)
            if r == 1 << 30:
                break
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        return [self.vocab[p] for p in parts]


def non_speech_tokens(bpe):
    """openai/whisper tokenizer.py: tokens of symbols that are not speech,
    alone or after a space, and the first token of " -" and " '"."""
    symbols = list("\"#()*+/:;<=>@[\\]^_`{|}~「」『』")
    symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} " \
        "♪♪ ♪♪♪".split()
    misc = set("♩♪♫♬♭♮♯")
    assert all(0x2640 <= ord(c) <= 0x267F for c in misc)
    result = {bpe.encode(" -")[0], bpe.encode(" '")[0]}
    for symbol in symbols + sorted(misc):
        for tokens in (bpe.encode(symbol), bpe.encode(" " + symbol)):
            if len(tokens) == 1 or symbol in misc:
                result.add(tokens[0])
    return sorted(result)


def special_ids(tok):
    ids = {}
    for t in tok.get("added_tokens", []):
        ids[t["content"]] = t["id"]
    return ids


def generation_config(hp, ct2_cfg, tok, multilingual=None):
    sp = special_ids(tok)
    need = ("<|endoftext|>", "<|startoftranscript|>", "<|translate|>",
            "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
            "<|notimestamps|>")
    missing = [t for t in need if t not in sp]
    if missing:
        raise ConvertError("tokenizer.json lacks " + ", ".join(missing))
    eot, sot = sp["<|endoftext|>"], sp["<|startoftranscript|>"]
    no_speech = sp.get("<|nocaptions|>", sp.get("<|nospeech|>"))
    if multilingual is None:
        multilingual = hp["vocab_size"] >= 51865
    suppress = ct2_cfg.get("suppress_ids")
    begin = ct2_cfg.get("suppress_ids_begin")
    derived = []
    if suppress is None:
        suppress = non_speech_tokens(Bpe(tok)) + [
            sp["<|transcribe|>"], sp["<|translate|>"], sot,
            sp["<|startofprev|>"], sp["<|startoflm|>"]]
        if no_speech is not None:
            suppress.append(no_speech)
        suppress = sorted(set(suppress))
        derived.append("suppress_tokens")
    if begin is None:
        begin = Bpe(tok).encode(" ") + [eot]
        derived.append("begin_suppress_tokens")
    g = {
        "begin_suppress_tokens": list(begin),
        "bos_token_id": eot,
        "decoder_start_token_id": sot,
        "eos_token_id": eot,
        "is_multilingual": multilingual,
        "max_initial_timestamp_index": 50,
        "max_length": hp["max_target_positions"],
        "no_timestamps_token_id": sp["<|notimestamps|>"],
        "pad_token_id": eot,
        "prev_sot_token_id": sp["<|startofprev|>"],
        "return_timestamps": False,
        "suppress_tokens": list(suppress),
    }
    if "alignment_heads" in ct2_cfg:
        g["alignment_heads"] = ct2_cfg["alignment_heads"]
    if multilingual:
        langs = {c: i for c, i in sp.items()
                 if re.fullmatch(r"<\|[a-z]{2,5}\|>", c)
                 and sot < i < sp["<|translate|>"]}
        if not langs:
            raise ConvertError("multilingual, but no <|xx|> tokens")
        g["lang_to_id"] = dict(sorted(langs.items(), key=lambda x: x[1]))
        g["task_to_id"] = {"transcribe": sp["<|transcribe|>"],
                           "translate": sp["<|translate|>"]}
    # transformers' generate() takes its default task from here; mm does
    # not read it
    g["forced_decoder_ids"] = [[1, None], [2, sp["<|transcribe|>"]]] \
        if multilingual else [[1, sp["<|notimestamps|>"]]]
    return g, derived


# ------------------------------------------------------------------ writers


def write_safetensors(path, tensors, dtype):
    st = {"float16": "F16", "float32": "F32"}[dtype]
    header = {"__metadata__": {"format": "pt"}}
    blobs, off = [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name].astype(np.dtype(dtype)
                                                      .newbyteorder("<")))
        if dtype == "float16" and not np.all(np.isfinite(a)):
            raise ConvertError("%s does not fit in float16" % name)
        b = a.tobytes()
        header[name] = {"dtype": st, "shape": list(a.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def hf_config(hp, gen):
    c = {
        "architectures": ["WhisperForConditionalGeneration"],
        "model_type": "whisper",
        "activation_function": "gelu",
        "activation_dropout": 0.0, "attention_dropout": 0.0, "dropout": 0.0,
        "encoder_layerdrop": 0.0, "decoder_layerdrop": 0.0,
        "apply_spec_augment": False, "use_cache": True,
        "is_encoder_decoder": True,
        "num_hidden_layers": hp["encoder_layers"],
        "bos_token_id": gen["bos_token_id"],
        "eos_token_id": gen["eos_token_id"],
        "pad_token_id": gen["pad_token_id"],
        "decoder_start_token_id": gen["decoder_start_token_id"],
        "begin_suppress_tokens": gen["begin_suppress_tokens"],
        "suppress_tokens": gen["suppress_tokens"],
        "init_std": 0.02,
        "median_filter_width": 7,
        "torch_dtype": "float32",
    }
    c.update(hp)
    return c


def preprocessor_config(hp):
    n_samples = 16000 * 30
    return {
        "chunk_length": 30,
        "dither": 0.0,
        "feature_extractor_type": "WhisperFeatureExtractor",
        "feature_size": hp["num_mel_bins"],
        "hop_length": 160,
        "n_fft": 400,
        "n_samples": n_samples,
        "nb_max_frames": n_samples // 160,
        "padding_side": "right",
        "padding_value": 0.0,
        "processor_class": "WhisperProcessor",
        "return_attention_mask": False,
        "sampling_rate": 16000,
    }


def tokenizer_config():
    return {
        "tokenizer_class": "WhisperTokenizer",
        "bos_token": "<|endoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "add_prefix_space": False,
        "errors": "replace",
        "model_max_length": 1024,
        "processor_class": "WhisperProcessor",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="folder with config.json, tokenizer.json "
                    "and model.bin")
    ap.add_argument("dst", help="output folder (created; files replaced)")
    ap.add_argument("--dtype", choices=("auto", "f16", "f32"), default="auto",
                    help="safetensors type (auto: F16 when the source has "
                    "F16 weights, else F32)")
    ap.add_argument("--multilingual", choices=("auto", "yes", "no"),
                    default="auto", help="auto: a vocabulary of 51865 "
                    "tokens or more")
    ap.add_argument("--model-bin", nargs="+", metavar="PART",
                    help="model.bin, or its parts in order (split packages)")
    a = ap.parse_args()

    parts = a.model_bin or [os.path.join(a.src, "model.bin")]
    data = b"".join(open(p, "rb").read() for p in parts)
    spec, revision, variables, aliases = read_ct2(data)
    if spec != "WhisperSpec":
        raise ConvertError("model.bin is a %s, not a WhisperSpec"
                           % (spec or "version-1 model"))
    with open(os.path.join(a.src, "config.json")) as f:
        ct2_cfg = json.load(f)
    tok_path = os.path.join(a.src, "tokenizer.json")
    with open(tok_path, encoding="utf-8") as f:
        tok = json.load(f)

    W = Weights(variables, aliases)
    hp, tensors = convert_weights(W)
    gen, derived = generation_config(hp, ct2_cfg, tok, {
        "yes": True, "no": False}.get(a.multilingual))
    dtype = {"f16": "float16", "f32": "float32"}.get(a.dtype)
    if dtype is None:
        kinds = {v.dtype for v in variables.values() if v.ndim >= 2}
        dtype = "float16" if np.dtype("float16") in kinds else "float32"

    os.makedirs(a.dst, exist_ok=True)
    tmp = os.path.join(a.dst, "model.safetensors.part")
    write_safetensors(tmp, tensors, dtype)
    os.replace(tmp, os.path.join(a.dst, "model.safetensors"))
    write_json(os.path.join(a.dst, "config.json"), hf_config(hp, gen))
    write_json(os.path.join(a.dst, "generation_config.json"), gen)
    write_json(os.path.join(a.dst, "preprocessor_config.json"),
               preprocessor_config(hp))
    write_json(os.path.join(a.dst, "tokenizer_config.json"),
               tokenizer_config())
    shutil.copyfile(tok_path, os.path.join(a.dst, "tokenizer.json"))
    print("ct2-whisper-to-hf: %s rev %d -> %s: d_model %d, %d+%d layers, "
          "vocab %d, %s%s%s" % (
              spec, revision, a.dst, hp["d_model"], hp["encoder_layers"],
              hp["decoder_layers"], hp["vocab_size"],
              "multilingual" if gen["is_multilingual"] else "English-only",
              ", %s" % dtype,
              ", derived " + ", ".join(derived) if derived else ""))


if __name__ == "__main__":
    try:
        main()
    except (ConvertError, OSError, ValueError, KeyError) as e:
        print("ct2-whisper-to-hf: %s" % e, file=sys.stderr)
        sys.exit(1)
