#!/bin/sh
# transcribe-file.sh — transcribe the speech of a WAV file as WebVTT
# subtitles.
#
#   filesrc ! wavparse ! audioconvert ! audioresample
#     ! mmaudioenc (Whisper encoder) ! mmllmsink (Whisper decoder)
#
# Model (not downloaded by this script; point it at a folder you have):
#   a Hugging Face Whisper folder (config.json, model.safetensors,
#   tokenizer.json, generation_config.json, preprocessor_config.json), e.g.
#   openai/whisper-tiny (150 MB), whisper-base or whisper-small:
#     huggingface-cli download openai/whisper-tiny --local-dir whisper-tiny
#   or  git clone https://huggingface.co/openai/whisper-tiny
#   -> MM_WHISPER.  English-only folders (whisper-tiny.en, ...) work too.
#   The same folder serves both elements: mmaudioenc runs its encoder,
#   mmllmsink its decoder.
#
# Usage:
#   MM_WHISPER=whisper-tiny pipelines/transcribe-file.sh talk.wav [talk.vtt]
#
# Optional settings (environment):
#   MM_WINDOW    seconds of audio per window, at most 30   (default 10)
#   MM_HOP       seconds between window starts             (default 5)
#   MM_LANGUAGE  spoken language code (en, fr, ...)        (default: detected
#                                                           per window)
#   MM_TASK      transcribe or translate (into English)    (default transcribe)
#   MM_DEVICE    OpenCL device: auto, cpu, gpu, index      (default auto)
#   MM_FORMAT    webvtt, srt or jsonl                      (default: from the
#                                                           output extension)
#
# Windows overlap (hop < window) so that every word is heard whole by some
# window; mmllmsink merges them into one transcript without repeats, a cue
# per Whisper segment, timed on the file's timeline.  Files other than WAV
# go through decodebin.  The file is read as fast as the models go
# (sync=false) and no window is dropped (a file is not live).  Each cue is
# written and flushed as soon as it is known, and printed.  Ctrl-C stops
# cleanly (-e): the file stays valid.
set -eu

if [ $# -lt 1 ]; then
  sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit 2
fi
in=$1
out=${2:-${in%.*}.vtt}
: "${MM_WHISPER:?set MM_WHISPER to a Hugging Face Whisper folder (see the header of $0)}"
window=${MM_WINDOW:-10}
hop=${MM_HOP:-5}
language=${MM_LANGUAGE:-auto}
task=${MM_TASK:-transcribe}
device=${MM_DEVICE:-auto}
format=${MM_FORMAT:-auto}

[ -e "$in" ] || { echo "$0: $in: no such file" >&2; exit 1; }
[ -d "$MM_WHISPER" ] || { echo "$0: $MM_WHISPER: not a folder" >&2; exit 1; }

# Use the plugin of this checkout when it has been built.
. "$(dirname "$0")/use-plugin.sh"

case "$in" in
  *.wav|*.WAV) demux=wavparse ;;
  *) demux=decodebin ;;
esac

echo "Transcript of $in -> $out"
exec gst-launch-1.0 -e \
  filesrc location="$in" ! $demux ! audioconvert ! audioresample ! \
  mmaudioenc model="$MM_WHISPER" device="$device" window="$window" \
    hop="$hop" ! \
  mmllmsink model="$MM_WHISPER" device="$device" language="$language" \
    task="$task" sync=false print=true location="$out" format="$format"
