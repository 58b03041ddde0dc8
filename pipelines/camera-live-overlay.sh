#!/bin/sh
# camera-live-overlay.sh — show the camera with a live caption drawn on it.
#
#   v4l2src ! videoconvert ! mmframesample mode=mark ! mmvisionenc !
#     mmllmsink overlay=true video-sink="videoconvert ! autovideosink"
#
# Every frame is shown at the camera's rate; a few frames per second (the
# ones mmframesample marks) are encoded, and the LLM captions them on its
# own thread.  Captions are drawn at the bottom of the picture (textoverlay
# from gst-plugins-base) and printed.  When the models fall behind, the
# oldest pending work is dropped (a camera is live), so the picture never
# stalls; each caption reports its latency in the `mm-caption` message.
#
# Models (not downloaded by this script; point it at files you have):
#   SmolVLM-256M-Instruct as converted by llama.cpp, e.g. from the Hugging
#   Face repository ggml-org/SmolVLM-256M-Instruct-GGUF:
#     SmolVLM-256M-Instruct-Q8_0.gguf         the language model  -> MM_LLM
#     mmproj-SmolVLM-256M-Instruct-Q8_0.gguf  vision encoder and
#                                             projector          -> MM_MMPROJ
#   (`llama-server -hf ggml-org/SmolVLM-256M-Instruct-GGUF` leaves both in
#   ~/.cache/llama.cpp/.)  Any llama.cpp LLM GGUF with the mmproj made for
#   it (or the matching Hugging Face folders) can be used instead.
#
# Usage:
#   MM_LLM=SmolVLM-256M-Instruct-Q8_0.gguf \
#   MM_MMPROJ=mmproj-SmolVLM-256M-Instruct-Q8_0.gguf \
#     pipelines/camera-live-overlay.sh [/dev/video0]
#
# Without a device argument the camera is found by autovideosrc.
#
# Optional settings (environment):
#   MM_FPS     frames analysed per second            (default 0.5)
#   MM_PROMPT  the instruction or question           (default: describe)
#   MM_DEVICE  OpenCL device: auto, cpu, gpu, index  (default auto)
#   MM_SINK    the display                           (default autovideosink)
#
# An application can change the question while this runs; see the
# documentation of mmllmsink (property "prompt", or an "mm-prompt" event).
set -eu

case "${1:-}" in
  -h|--help)
    sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0 ;;
esac
: "${MM_LLM:?set MM_LLM to the language model GGUF (see the header of $0)}"
: "${MM_MMPROJ:?set MM_MMPROJ to the mmproj GGUF (see the header of $0)}"
fps=${MM_FPS:-0.5}
prompt=${MM_PROMPT:-Describe what you see in one short sentence.}
device=${MM_DEVICE:-auto}
display=${MM_SINK:-autovideosink}

for f in "$MM_LLM" "$MM_MMPROJ"; do
  [ -e "$f" ] || { echo "$0: $f: no such file" >&2; exit 1; }
done
if [ $# -ge 1 ]; then
  set -- v4l2src device="$1"
else
  set -- autovideosrc
fi

# Use the plugin of this checkout when it has been built.
. "$(dirname "$0")/use-plugin.sh"
gst-inspect-1.0 textoverlay >/dev/null 2>&1 || \
  echo "$0: textoverlay (gst-plugins-base with pango) is missing:" \
    "captions are printed but not drawn" >&2

exec gst-launch-1.0 -e \
  "$@" ! videoconvert ! \
  mmframesample mode=mark fps="$fps" ! \
  mmvisionenc model="$MM_MMPROJ" device="$device" ! \
  mmllmsink model="$MM_LLM" device="$device" prompt="$prompt" \
    print=true overlay=true video-sink="videoconvert ! $display"
