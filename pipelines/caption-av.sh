#!/bin/sh
# caption-av.sh — caption a video file from its pictures and its sound,
# with one LLM that reads both.
#
#   filesrc ! decodebin name=d
#   d. ! videoconvert ! mmframesample ! mmvisionenc ──┐
#   d. ! audioconvert ! mmaudioenc ───────────────────┴─► mmllmsink
#
# Models (not downloaded by this script; point it at files you have):
#   MM_LLM           a Llama-family LLM GGUF (llama / qwen2 architecture;
#                    F32, F16, BF16, Q8_0, Q4_0 or Q4_1 weights)
#   MM_MMPROJ        a vision mmproj GGUF made by llama.cpp (SigLIP / CLIP
#                    tower with an mlp, idefics3 or resampler projector)
#   MM_AUDIO_MMPROJ  an audio mmproj GGUF made by llama.cpp: a Whisper
#                    encoder with an ultravox, voxtral or qwen2a projector
#                    (or a Hugging Face Whisper folder, whose tokens are the
#                    encoder's own, of its d_model)
# Both projectors must output vectors of the LLM's hidden size: mmllmsink
# refuses tokens of another width.  For example, all 2048 wide:
#   ggml-org/ultravox-v0_5-llama-3_2-1b-GGUF:
#     Llama-3.2-1B-Instruct-Q8_0.gguf               -> MM_LLM
#     mmproj-ultravox-v0_5-llama-3_2-1b-f16.gguf    -> MM_AUDIO_MMPROJ
#   ggml-org/SmolVLM2-2.2B-Instruct-GGUF:
#     mmproj-SmolVLM2-2.2B-Instruct-Q8_0.gguf       -> MM_MMPROJ
# An LLM understands the tokens of the projectors trained for it: above,
# Llama 3.2 1B was trained with the Ultravox projector and SmolLM2-1.7B with
# the SmolVLM2 one, so the pictures reach this LLM as vectors of the right
# width it has not learnt to read.  (The released models that pair both
# encoders with one LLM, Qwen2.5-Omni and Gemma 3n/4, use projector types
# mm does not run.)  Voxtral Mini 3B (ggml-org/Voxtral-Mini-3B-2507-GGUF,
# 3072 wide) and Qwen2-Audio (4096) work the same way with a vision
# projector of their width.
#
# Usage:
#   MM_LLM=Llama-3.2-1B-Instruct-Q8_0.gguf \
#   MM_MMPROJ=mmproj-SmolVLM2-2.2B-Instruct-Q8_0.gguf \
#   MM_AUDIO_MMPROJ=mmproj-ultravox-v0_5-llama-3_2-1b-f16.gguf \
#     pipelines/caption-av.sh input.mkv [output.vtt]
#
# The file must have a video and an audio stream.
#
# Optional settings (environment):
#   MM_FPS       frames analysed per second of video   (default 1)
#   MM_WINDOW    seconds of audio per audio window     (default: the
#                model's, 30 s for released models; shorter windows are
#                zero-padded to it)
#   MM_INTERVAL  seconds of stream per caption         (default 10)
#   MM_CONTEXT   media tokens the LLM sees at most     (default: element's)
#   MM_PROMPT    the instruction                       (default: describe)
#   MM_DEVICE    OpenCL device: auto, cpu, gpu, index  (default auto)
#   MM_FORMAT    webvtt, srt or jsonl                  (default: from the
#                                                       output extension)
#
# The file is read as fast as the models go (sync=false); every span of
# MM_INTERVAL seconds gets a caption over the frames and audio windows of
# the context, in stream order.  Each cue is written and flushed as soon as
# it is ready; captions are also printed.  Ctrl-C stops cleanly (-e).
set -eu

if [ $# -lt 1 ]; then
  sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit 2
fi
in=$1
out=${2:-${in%.*}.vtt}
: "${MM_LLM:?set MM_LLM to the language model GGUF (see the header of $0)}"
: "${MM_MMPROJ:?set MM_MMPROJ to the vision mmproj GGUF (see the header of $0)}"
: "${MM_AUDIO_MMPROJ:?set MM_AUDIO_MMPROJ to the audio mmproj GGUF (see the header of $0)}"
fps=${MM_FPS:-1}
window=${MM_WINDOW:-0}
interval=${MM_INTERVAL:-10}
prompt=${MM_PROMPT:-Describe what is happening in the video and what can be heard.}
device=${MM_DEVICE:-auto}
format=${MM_FORMAT:-auto}
context=
if [ -n "${MM_CONTEXT:-}" ]; then
  context="context-tokens=$MM_CONTEXT"
fi

for f in "$in" "$MM_LLM" "$MM_MMPROJ" "$MM_AUDIO_MMPROJ"; do
  [ -e "$f" ] || { echo "$0: $f: no such file" >&2; exit 1; }
done

# Use the plugin of this checkout when it has been built.
. "$(dirname "$0")/use-plugin.sh"

echo "Captions of $in (pictures and sound) -> $out"
# shellcheck disable=SC2086  # $context is empty or one word
exec gst-launch-1.0 -e \
  mmllmsink name=llm model="$MM_LLM" device="$device" prompt="$prompt" \
    interval="$interval" sync=false print=true $context \
    location="$out" format="$format" \
  filesrc location="$in" ! decodebin name=d \
  d. ! queue ! videoconvert ! mmframesample fps="$fps" ! \
    mmvisionenc model="$MM_MMPROJ" device="$device" ! llm.video_0 \
  d. ! queue ! audioconvert ! \
    mmaudioenc model="$MM_AUDIO_MMPROJ" device="$device" window="$window" ! \
    llm.audio_0
