#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# pipelines/transcribe-file.sh and pipelines/transcribe-live.sh run with
# the tiny Whisper fixture (1 s window: MM_WINDOW=1 MM_HOP=0.5):
#  1. a 2.5 s WAV (audiotestsrc ticks, 22.05 kHz) -> WebVTT: exit 0, the
#     header, at least one cue, every timing line well formed;
#  2. the live script with MM_AUDIO_SRC="audiotestsrc is-live=true ..."
#     (3 s at 16 kHz) in place of the microphone, writing SRT: exit 0 and
#     transcript lines printed.
# The random model transcribes nonsense; the test wants the scripts to run
# and their files valid (tests/elements/test_transcribe_launch.c checks a
# WebVTT file cue by cue).  Exits 77 (skipped) without the fixture, the WAV
# elements or an OpenCL device.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
fx=${MM_FIXTURES:-$src/tests/fixtures}
model="$fx/whisper/hf"
[ -d "$model" ] || { echo "SKIP: no fixture $model"; exit 77; }
for e in wavenc wavparse audiotestsrc audioresample; do
  gst-inspect-1.0 "$e" >/dev/null 2>&1 || { echo "SKIP: no $e"; exit 77; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

gst-launch-1.0 -q audiotestsrc wave=ticks num-buffers=25 samplesperbuffer=2205 \
  ! audio/x-raw,format=S16LE,rate=22050,channels=1 ! wavenc \
  ! filesink location="$tmp/talk.wav" \
  || { echo "FAIL: could not make the test file"; exit 1; }

MM_WHISPER="$model" MM_WINDOW=1 MM_HOP=0.5 \
  sh "$src/pipelines/transcribe-file.sh" "$tmp/talk.wav" "$tmp/talk.vtt" \
  > "$tmp/file.txt" 2>&1
rc=$?
if grep -q "no OpenCL device" "$tmp/file.txt"; then
  echo "SKIP: no OpenCL device"; exit 77
fi
cat "$tmp/file.txt"
echo "--- $tmp/talk.vtt:"
cat "$tmp/talk.vtt" 2>/dev/null
[ $rc -eq 0 ] || { echo "FAIL: transcribe-file.sh exited $rc"; exit 1; }
[ "$(head -n 1 "$tmp/talk.vtt")" = "WEBVTT" ] || { echo "FAIL: no header"; exit 1; }
n=$(grep -c -- '-->' "$tmp/talk.vtt")
bad=$(grep -- '-->' "$tmp/talk.vtt" | grep -Evc \
  '^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} --> [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}$')
echo "cues: $n, malformed timing lines: $bad"
[ "$n" -ge 1 ] && [ "$bad" -eq 0 ] || { echo "FAIL: WebVTT"; exit 1; }

MM_WHISPER="$model" MM_WINDOW=1 MM_HOP=0.5 \
MM_AUDIO_SRC="audiotestsrc is-live=true wave=ticks num-buffers=30 samplesperbuffer=1600 ! audio/x-raw,rate=16000,channels=1" \
  sh "$src/pipelines/transcribe-live.sh" "$tmp/live.srt" > "$tmp/live.txt" 2>&1
rc=$?
cat "$tmp/live.txt"
[ $rc -eq 0 ] || { echo "FAIL: transcribe-live.sh exited $rc"; exit 1; }
lines=$(grep -Ec '^\[[0-9:.]+ --> [0-9:.]+\]' "$tmp/live.txt")
echo "printed transcript lines: $lines"
[ "$lines" -ge 1 ] || { echo "FAIL: nothing printed"; exit 1; }
[ -e "$tmp/live.srt" ] || { echo "FAIL: no SRT file"; exit 1; }
echo PASS
