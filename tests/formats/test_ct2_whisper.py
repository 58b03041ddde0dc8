#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""scripts/ct2-whisper-to-hf.py on the Whisper fixture as CTranslate2's own
converter wrote it (tests/fixtures/whisper/ct2, gen_ct2_whisper.py): the
folder it makes must hold the fixture's Hugging Face weights
(tests/fixtures/whisper/hf) and settings.

  model.bin       float16: every tensor equals the fixture's rounded to
                  F16, bit for bit
  model-int8.bin  int8 weights (per-row scales), float32 rest: quantised
                  tensors within half a quantisation step of the fixture's
                  (max|row| / 127 / 2), the others exact
  both            config.json dims and generation_config.json special
                  ids and suppression lists as in the fixture
  broken files    a truncated model.bin or one of another spec: exit
                  status 1 and a message, no traceback

Exits 77 (skipped) without numpy; the converter needs it.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    print("SKIP: numpy is not installed (the converter needs it)")
    sys.exit(77)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
FIX = os.environ.get("MM_FIXTURES", os.path.join(ROOT, "tests", "fixtures"))
CT2 = os.path.join(FIX, "whisper", "ct2")
HF = os.path.join(FIX, "whisper", "hf")
CONVERTER = os.path.join(ROOT, "scripts", "ct2-whisper-to-hf.py")

DIMS = ("d_model", "vocab_size", "num_mel_bins", "encoder_layers",
        "encoder_attention_heads", "encoder_ffn_dim", "max_source_positions",
        "decoder_layers", "decoder_attention_heads", "decoder_ffn_dim",
        "max_target_positions", "scale_embedding", "decoder_start_token_id",
        "eos_token_id")
GEN = ("decoder_start_token_id", "eos_token_id", "no_timestamps_token_id",
       "prev_sot_token_id", "suppress_tokens", "begin_suppress_tokens",
       "lang_to_id", "task_to_id", "is_multilingual",
       "max_initial_timestamp_index")

failed = False


def fail(msg):
    global failed
    print("FAIL " + msg, file=sys.stderr)
    failed = True


def load_safetensors(path):
    with open(path, "rb") as f:
        d = f.read()
    n = struct.unpack("<Q", d[:8])[0]
    header = json.loads(d[8:8 + n])
    out = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        a, b = v["data_offsets"]
        dt = {"F16": "<f2", "F32": "<f4"}[v["dtype"]]
        out[name] = (v["dtype"], np.frombuffer(d[8 + n + a:8 + n + b], dt)
                     .reshape(v["shape"]))
    return out


def convert(dst, *extra):
    r = subprocess.run([sys.executable, CONVERTER, CT2, dst,
                        "--multilingual", "yes"] + list(extra),
                       capture_output=True, text=True)
    print(r.stdout + r.stderr, end="")
    return r


def check_settings(dst, what):
    for name, keys in (("config.json", DIMS), ("generation_config.json",
                                                GEN)):
        want = json.load(open(os.path.join(HF, name)))
        got = json.load(open(os.path.join(dst, name)))
        for k in keys:
            if k in want and got.get(k) != want[k]:
                fail("%s %s %s: %r, fixture %r" % (what, name, k, got.get(k),
                                                   want[k]))
    want = json.load(open(os.path.join(HF, "preprocessor_config.json")))
    got = json.load(open(os.path.join(dst, "preprocessor_config.json")))
    for k in ("feature_size", "sampling_rate", "hop_length", "n_fft"):
        if got.get(k) != want[k]:
            fail("%s preprocessor_config.json %s" % (what, k))


def check_f16(dst):
    ref = load_safetensors(os.path.join(HF, "model.safetensors"))
    got = load_safetensors(os.path.join(dst, "model.safetensors"))
    if set(got) != set(ref):
        fail("f16 tensors: %s" % sorted(set(got) ^ set(ref)))
    worst = 0
    for k in sorted(set(got) & set(ref)):
        dtype, g = got[k]
        w = ref[k][1].astype(np.float16)
        if dtype != "F16" or g.shape != w.shape or not np.array_equal(g, w):
            fail("f16 %s: %s %s, fixture %s" % (k, dtype, g.shape, w.shape))
        elif g.size:
            worst = max(worst, float(np.abs(g.astype(np.float32) -
                                            ref[k][1]).max()))
    print("f16: %d tensors equal the fixture's in F16 (max-abs vs F32 %.2g)"
          % (len(ref), worst))


def check_int8(dst):
    ref = load_safetensors(os.path.join(HF, "model.safetensors"))
    got = load_safetensors(os.path.join(dst, "model.safetensors"))
    if set(got) != set(ref):
        fail("int8 tensors: %s" % sorted(set(got) ^ set(ref)))
    n_quant = 0
    for k in sorted(set(got) & set(ref)):
        dtype, g = got[k]
        w = ref[k][1]
        if dtype != "F32" or g.shape != w.shape:
            fail("int8 %s: %s %s, fixture %s" % (k, dtype, g.shape, w.shape))
            continue
        if np.array_equal(g, w):
            continue
        rows = w.reshape(w.shape[0], -1)
        step = np.abs(rows).max(axis=1, keepdims=True) / 127.0
        err = np.abs(g.reshape(rows.shape) - rows)
        if w.ndim < 2 or np.any(err > 0.5 * step * (1 + 1e-5) + 1e-7):
            fail("int8 %s: error %.3g beyond half a step" % (k, err.max()))
        n_quant += 1
    print("int8: %d tensors within half a step, %d exact"
          % (n_quant, len(ref) - n_quant))
    if n_quant < 20:
        fail("int8: only %d quantised tensors" % n_quant)


def check_broken(tmp):
    data = open(os.path.join(CT2, "model.bin"), "rb").read()
    for what, blob in (("truncated", data[:len(data) // 2]),
                       ("another spec", data[:4] + struct.pack("<H", 12) +
                        b"OtherSpec!!\0" + data[4 + 2 + 12:])):
        path = os.path.join(tmp, "broken.bin")
        with open(path, "wb") as f:
            f.write(blob)
        r = convert(os.path.join(tmp, "broken"), "--model-bin", path)
        if r.returncode != 1 or "Traceback" in r.stderr \
                or "ct2-whisper-to-hf: " not in r.stderr:
            fail("%s model.bin: status %d, %s" % (what, r.returncode,
                                                  r.stderr))


def main():
    if not os.path.exists(os.path.join(CT2, "model.bin")):
        print("SKIP: %s is missing" % CT2)
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        f16 = os.path.join(tmp, "f16")
        if convert(f16).returncode == 0:
            check_f16(f16)
            check_settings(f16, "f16")
        else:
            fail("converting model.bin")
        i8 = os.path.join(tmp, "int8")
        if convert(i8, "--model-bin", os.path.join(
                CT2, "model-int8.bin")).returncode == 0:
            check_int8(i8)
            check_settings(i8, "int8")
        else:
            fail("converting model-int8.bin")
        check_broken(tmp)
    print("FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
