/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Log-mel spectrogram pieces (mm-mel.c): framing with reflect padding, the
 * power spectrum of the DFT GEMM's output, log10 with per-frame maxima, and
 * Whisper's dynamic-range normalisation. */

/* y[f, j] = padded[f * hop + j] for j < n_fft, where padded is the audio
 * zero-extended to n_samples, then reflected by n_fft / 2 at both ends. */
__kernel void
kernel_mel_frames (__global const float *x, uint xo, uint n_audio,
    uint n_samples, uint n_fft, uint hop, __global float *y, uint yo)
{
  uint j = GID0, f = GID1;
  int i = (int) (f * hop + j) - (int) (n_fft / 2);
  if (i < 0)
    i = -i;
  if (i >= (int) n_samples)
    i = 2 * ((int) n_samples - 1) - i;
  y[yo + f * n_fft + j] = (uint) i < n_audio ? x[xo + i] : 0.0f;
}

/* spec [n_frames, 2 * n_bins] holds re (cols < n_bins) and im;
 * y [n_frames, n_bins] = re^2 + im^2. */
__kernel void
kernel_mel_power (__global const float *spec, uint so, __global float *y,
    uint yo, uint n_bins)
{
  uint k = GID0, f = GID1;
  __global const float *row = spec + so + (ulong) f * 2 * n_bins;
  float re = row[k], im = row[n_bins + k];
  y[yo + (ulong) f * n_bins + k] = re * re + im * im;
}

/* mel [n_frames, n_mels] -> y [n_mels, n_frames] = log10 (max (mel, 1e-10));
 * fm[f] = the frame's largest value. */
__kernel void
kernel_mel_log (__global const float *mel, uint mo, __global float *y,
    uint yo, __global float *fm, uint fo, uint n_frames, uint n_mels)
{
  uint f = GID0;
  float m = -INFINITY;
  for (uint i = 0; i < n_mels; i++) {
    float v = log10 (fmax (mel[mo + (ulong) f * n_mels + i], 1e-10f));
    y[yo + (ulong) i * n_frames + f] = v;
    m = fmax (m, v);
  }
  fm[fo + f] = m;
}

/* One work-item: fm[n] = max of fm[0, n). */
__kernel void
kernel_mel_max (__global float *fm, uint fo, uint n)
{
  float m = -INFINITY;
  for (uint i = 0; i < n; i++)
    m = fmax (m, fm[fo + i]);
  fm[fo + n] = m;
}

/* In place: x = (max (x, gmax - 8) + 4) / 4 with gmax = fm[n_frames]. */
__kernel void
kernel_mel_norm (__global float *x, uint xo, __global const float *fm,
    uint fo, uint n_frames)
{
  float floor_ = fm[fo + n_frames] - 8.0f;
  uint i = GID0;
  x[xo + i] = (fmax (x[xo + i], floor_) + 4.0f) / 4.0f;
}

/* Whisper decoder: rows x [n, d] written as columns col0.. of y [d, ld]
 * (the transposed value cache). */
__kernel void
kernel_whisper_put_cols (__global const float *x, uint xo, __global float *y,
    uint yo, uint d, uint ld, uint col0)
{
  uint j = GID0, i = GID1;      /* dim, row */
  y[yo + (ulong) j * ld + col0 + i] = x[xo + (ulong) i * d + j];
}
