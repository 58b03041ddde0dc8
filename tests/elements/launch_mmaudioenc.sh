#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# mmaudioenc from gst-launch-1.0 with the tiny Whisper fixture (1 s window):
#  1. audiotestsrc, 2.5 s of S16 stereo at 44.1 kHz, 1 s windows every 0.5 s:
#     the stats after EOS count 4 windows, all encoded;
#  2. a WAV file (22.05 kHz mono, 1.2 s) through filesrc ! wavparse: one
#     full window and a partial one at EOS.
# Exits 77 (skipped) without the fixtures or an OpenCL device.
set -u
model="${MM_FIXTURES:-}/whisper/hf"
[ -d "$model" ] || { echo "SKIP: no fixture $model"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run () {
  # $1: expected stats fields (grep -E pattern), rest: the pipeline
  want="$1"; shift
  gst-launch-1.0 -m "$@" > "$tmp/out.txt" 2>&1
  rc=$?
  if grep -q "no OpenCL device" "$tmp/out.txt"; then
    echo "SKIP: no OpenCL device"; exit 77
  fi
  stats=$(grep -o "mm-encoder-stats.*" "$tmp/out.txt" | tail -n 1)
  echo "$stats"
  if [ $rc -ne 0 ] || ! echo "$stats" | grep -Eq "$want"; then
    echo "FAIL (exit $rc, want $want):"; cat "$tmp/out.txt"; exit 1
  fi
}

run 'windows=\(guint64\)4, encoded=\(guint64\)4, dropped=\(guint64\)0' \
  audiotestsrc num-buffers=25 samplesperbuffer=4410 wave=pink-noise \
  ! audio/x-raw,format=S16LE,rate=44100,channels=2 \
  ! mmaudioenc model="$model" window=1 hop=0.5 stats-interval=60 \
  ! fakesink

gst-launch-1.0 -q audiotestsrc num-buffers=12 samplesperbuffer=2205 \
  ! audio/x-raw,format=S16LE,rate=22050,channels=1 ! wavenc \
  ! filesink location="$tmp/a.wav" || exit 1
run 'windows=\(guint64\)2, encoded=\(guint64\)2, dropped=\(guint64\)0' \
  filesrc location="$tmp/a.wav" ! wavparse \
  ! mmaudioenc model="$model" stats-interval=60 ! fakesink
echo PASS
