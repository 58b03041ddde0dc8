#!/bin/sh
# caption-file.sh — caption a video file as WebVTT subtitles.
#
#   filesrc ! decodebin ! videoconvert ! mmframesample ! mmvisionenc ! mmllmsink
#
# Models (not downloaded by this script; point it at files you have):
#   SmolVLM-256M-Instruct as converted by llama.cpp, e.g. from the Hugging
#   Face repository ggml-org/SmolVLM-256M-Instruct-GGUF:
#     SmolVLM-256M-Instruct-Q8_0.gguf         the language model  -> MM_LLM
#     mmproj-SmolVLM-256M-Instruct-Q8_0.gguf  vision encoder and
#                                             projector          -> MM_MMPROJ
#   (F16 files work too.)  `llama-server -hf ggml-org/SmolVLM-256M-Instruct-GGUF`
#   leaves both in ~/.cache/llama.cpp/.  Any llama.cpp LLM GGUF with the mmproj made for
#   it, or the matching Hugging Face model folders, can be used instead
#   (SmolVLM-500M-Instruct, SmolVLM2, ...); the projector's output width
#   must equal the LLM's hidden size.
#
# Usage:
#   MM_LLM=SmolVLM-256M-Instruct-Q8_0.gguf \
#   MM_MMPROJ=mmproj-SmolVLM-256M-Instruct-Q8_0.gguf \
#     pipelines/caption-file.sh input.mp4 [output.vtt]
#
# Optional settings (environment):
#   MM_FPS       frames analysed per second of video   (default 1)
#   MM_INTERVAL  seconds of video per caption          (default 4)
#   MM_PROMPT    the instruction                       (default: describe)
#   MM_DEVICE    OpenCL device: auto, cpu, gpu, index  (default auto)
#   MM_FORMAT    webvtt, srt or jsonl                  (default: from the
#                                                       output extension)
#
# The file is read as fast as the models go (sync=false), and every span of
# MM_INTERVAL seconds gets a caption (a file source is not live, so the
# encoder and the LLM make the stream wait rather than drop work).  Each
# cue is written and flushed as soon as it is ready; captions are also
# printed.  Ctrl-C stops cleanly (-e): the file stays valid.
set -eu

if [ $# -lt 1 ]; then
  sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit 2
fi
in=$1
out=${2:-${in%.*}.vtt}
: "${MM_LLM:?set MM_LLM to the language model GGUF (see the header of $0)}"
: "${MM_MMPROJ:?set MM_MMPROJ to the mmproj GGUF (see the header of $0)}"
fps=${MM_FPS:-1}
interval=${MM_INTERVAL:-4}
prompt=${MM_PROMPT:-Describe what is happening in the video.}
device=${MM_DEVICE:-auto}
format=${MM_FORMAT:-auto}

for f in "$in" "$MM_LLM" "$MM_MMPROJ"; do
  [ -e "$f" ] || { echo "$0: $f: no such file" >&2; exit 1; }
done

# Use the plugin of this checkout when it has been built.
. "$(dirname "$0")/use-plugin.sh"

echo "Captions of $in -> $out"
exec gst-launch-1.0 -e \
  filesrc location="$in" ! decodebin ! videoconvert ! \
  mmframesample fps="$fps" ! \
  mmvisionenc model="$MM_MMPROJ" device="$device" ! \
  mmllmsink model="$MM_LLM" device="$device" prompt="$prompt" \
    interval="$interval" sync=false print=true \
    location="$out" format="$format"
