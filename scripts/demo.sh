#!/bin/sh
# Installs mm's dependencies, builds the plugin and runs the demo pipeline
# with the freshly built plugin (isolated registry in the build dir).
#
# What runs today: mmframesample on a test source, sampling 2 frames per
# second out of 30 and printing each kept frame.  Captioning pipelines
# (mmvisionenc ! mmllmsink) are in pipelines/ once those elements land.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
BUILD=${BUILD:-build}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD"
ninja -C "$BUILD"
export GST_PLUGIN_PATH="$PWD/$BUILD"
export GST_REGISTRY="$PWD/$BUILD/demo-registry.dat"
echo "== mmframesample: 300 frames at 30 fps, fps=2 -> 20 frames =="
gst-launch-1.0 -q videotestsrc num-buffers=300 \
  ! video/x-raw,framerate=30/1,width=320,height=240 \
  ! mmframesample fps=2 ! fakesink silent=false -v 2>&1 \
  | grep -o 'pts: [0-9:.]*' | sed 's/^/kept frame /'
