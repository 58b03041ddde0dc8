# Sourced by the scripts of pipelines/ (not run on its own): puts the mm
# plugin of this checkout on GST_PLUGIN_PATH when it has been built, and
# stops with a clear message when GStreamer cannot find the plugin at all.
# $0 is the sourcing script.
mm_here=$(cd "$(dirname "$0")/.." && pwd)
for mm_b in "$mm_here/build" "$mm_here/builddir"; do
  if [ -e "$mm_b/libgstmm.so" ]; then
    GST_PLUGIN_PATH="$mm_b${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
    export GST_PLUGIN_PATH
    break
  fi
done
gst-inspect-1.0 mmllmsink >/dev/null 2>&1 || {
  echo "$0: the mm plugin is not found; build it (meson setup build &&" \
    "ninja -C build) or set GST_PLUGIN_PATH" >&2
  exit 1
}
