#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# pipelines/caption-av.sh runs with the fixtures: a 3 s Ogg file (Theora
# 64x48 at 5 fps, Vorbis 16 kHz mono) through decodebin into
#   mmframesample ! mmvisionenc (idefics3/mmproj-idefics3.gguf, 40 wide)
#   mmaudioenc (audio_mmproj/mmproj-ultravox.gguf, 40 wide)
# and one mmllmsink with idefics3/idefics3.gguf (hidden 40).  The random
# models caption gibberish; the test wants exit 0 and JSON Lines captions
# whose largest prompt is longer than the frames alone can make it (6
# frames at 2 fps: 99 tokens with the template and the prompt, measured
# with the fixture's tokenizer; each 0.9 s audio window adds 6).
# Exits 77 (skipped) without the fixtures, the Ogg/Theora/Vorbis elements
# or an OpenCL device.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
fx=${MM_FIXTURES:-$src/tests/fixtures}
for f in idefics3/idefics3.gguf idefics3/mmproj-idefics3.gguf \
    audio_mmproj/mmproj-ultravox.gguf; do
  [ -e "$fx/$f" ] || { echo "SKIP: no fixture $fx/$f"; exit 77; }
done
for e in theoraenc vorbisenc oggmux decodebin; do
  gst-inspect-1.0 "$e" >/dev/null 2>&1 || { echo "SKIP: no $e"; exit 77; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

gst-launch-1.0 -q oggmux name=m ! filesink location="$tmp/av.ogg" \
  videotestsrc num-buffers=15 pattern=ball \
  ! video/x-raw,width=64,height=48,framerate=5/1 ! theoraenc ! queue ! m. \
  audiotestsrc num-buffers=30 samplesperbuffer=1600 wave=ticks \
  ! audio/x-raw,rate=16000,channels=1 ! audioconvert ! vorbisenc ! queue ! m. \
  || { echo "FAIL: could not make the test file"; exit 1; }

MM_LLM="$fx/idefics3/idefics3.gguf" \
MM_MMPROJ="$fx/idefics3/mmproj-idefics3.gguf" \
MM_AUDIO_MMPROJ="$fx/audio_mmproj/mmproj-ultravox.gguf" \
MM_FPS=2 MM_INTERVAL=1 MM_PROMPT="What happens?" \
  sh "$src/pipelines/caption-av.sh" "$tmp/av.ogg" "$tmp/out.jsonl" \
  > "$tmp/log.txt" 2>&1
rc=$?
if grep -q "no OpenCL device" "$tmp/log.txt"; then
  echo "SKIP: no OpenCL device"; exit 77
fi
cat "$tmp/log.txt"
echo "--- $tmp/out.jsonl:"
cat "$tmp/out.jsonl" 2>/dev/null
[ $rc -eq 0 ] || { echo "FAIL: caption-av.sh exited $rc"; exit 1; }
n=$(grep -c '"text"' "$tmp/out.jsonl" 2>/dev/null || echo 0)
max=$(grep -o '"prompt_tokens":[0-9]*' "$tmp/out.jsonl" | cut -d: -f2 \
  | sort -n | tail -n 1)
echo "captions: $n, largest prompt: ${max:-0} tokens"
[ "$n" -ge 1 ] || { echo "FAIL: no caption"; exit 1; }
[ "${max:-0}" -gt 99 ] || { echo "FAIL: no prompt with both media"; exit 1; }
echo PASS
