#!/bin/sh
# transcribe-live.sh — live transcript of the microphone, printed as it
# comes (and optionally written to a file).
#
#   autoaudiosrc ! audioconvert ! audioresample
#     ! mmaudioenc (Whisper encoder) ! mmllmsink (Whisper decoder) print=true
#
# Model (not downloaded by this script; point it at a folder you have):
#   a Hugging Face Whisper folder (config.json, model.safetensors,
#   tokenizer.json, generation_config.json, preprocessor_config.json), e.g.
#   openai/whisper-tiny or whisper-base (keep it small: every window is
#   encoded and decoded while you speak):
#     huggingface-cli download openai/whisper-tiny --local-dir whisper-tiny
#   or  git clone https://huggingface.co/openai/whisper-tiny
#   -> MM_WHISPER.
#
# Usage:
#   MM_WHISPER=whisper-tiny pipelines/transcribe-live.sh [transcript.vtt]
#
# Optional settings (environment):
#   MM_WINDOW    seconds of audio per window, at most 30   (default 6)
#   MM_HOP       seconds between window starts             (default 3)
#   MM_LANGUAGE  spoken language code (en, fr, ...)        (default: detected
#                                                           per window)
#   MM_TASK      transcribe or translate (into English)    (default transcribe)
#   MM_DEVICE    OpenCL device: auto, cpu, gpu, index      (default auto)
#   MM_AUDIO_SRC the source instead of autoaudiosrc, as a gst-launch
#                description (e.g. "pulsesrc device=...", or
#                "audiotestsrc is-live=true num-buffers=50" to try it)
#
# Text appears a window behind the speech: a segment that reaches the end
# of a window waits for the next one, which hears it whole (hop seconds
# later).  The source is live, so when the device falls behind, windows
# are dropped rather than delayed (mmaudioenc and mmllmsink leaky=auto);
# the transcript then skips that audio.  Ctrl-C ends the stream (-e): what
# was held back is printed and the file stays valid.
set -eu

case "${1:-}" in
  -h|--help)
    sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 2 ;;
esac
out=${1:-}
: "${MM_WHISPER:?set MM_WHISPER to a Hugging Face Whisper folder (see the header of $0)}"
window=${MM_WINDOW:-6}
hop=${MM_HOP:-3}
language=${MM_LANGUAGE:-auto}
task=${MM_TASK:-transcribe}
device=${MM_DEVICE:-auto}
src=${MM_AUDIO_SRC:-autoaudiosrc}

[ -d "$MM_WHISPER" ] || { echo "$0: $MM_WHISPER: not a folder" >&2; exit 1; }

# Use the plugin of this checkout when it has been built.
. "$(dirname "$0")/use-plugin.sh"

if [ -n "$out" ]; then set -- location="$out"; else set --; fi
echo "Listening (${window} s windows every ${hop} s); Ctrl-C to stop." >&2
# shellcheck disable=SC2086 # $src is a pipeline description
exec gst-launch-1.0 -q -e \
  $src ! audioconvert ! audioresample ! \
  mmaudioenc model="$MM_WHISPER" device="$device" window="$window" \
    hop="$hop" ! \
  mmllmsink model="$MM_WHISPER" device="$device" language="$language" \
    task="$task" print=true "$@"
