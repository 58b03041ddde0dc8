/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Log-mel spectrogram pieces (mm-mel.c): framing with reflect padding,
 * log10 with the transpose to [n_mels, n_frames], the global maximum, and
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

/* mel [n_frames, n_mels] -> y [n_mels, n_frames] = log10 (max (mel, 1e-10)).
 * A work-item takes 16 bins of one frame as a float16: PoCL vectorises
 * log10 over vector lanes, not over work-items (20x). */
__kernel void
kernel_mel_log (__global const float *mel, uint mo, __global float *y,
    uint yo, uint n_frames, uint n_mels)
{
  uint nb = (n_mels + 15) / 16, f = GID0 / nb, m0 = (GID0 - f * nb) * 16;
  __global const float *row = mel + mo + (ulong) f * n_mels;
  if (m0 + 16 <= n_mels) {
    float16 v = log10 (fmax (vload16 (0, row + m0), 1e-10f));
    float a[16];
    vstore16 (v, 0, a);
    for (uint k = 0; k < 16; k++)
      y[yo + (ulong) (m0 + k) * n_frames + f] = a[k];
  } else {
    for (uint m = m0; m < n_mels; m++)
      y[yo + (ulong) m * n_frames + f] = log10 (fmax (row[m], 1e-10f));
  }
}

/* One work-item: fm[0] = max of x[0, n). */
__kernel void
kernel_mel_max (__global const float *x, uint xo, uint n, __global float *fm,
    uint fo)
{
  uint n16 = n & ~15u, i;
  float16 m16 = -INFINITY;
  for (i = 0; i < n16; i += 16)
    m16 = fmax (m16, vload16 (0, x + xo + i));
  float8 m8 = fmax (m16.lo, m16.hi);
  float4 m4 = fmax (m8.lo, m8.hi);
  float m = fmax (fmax (m4.x, m4.y), fmax (m4.z, m4.w));
  for (; i < n; i++)
    m = fmax (m, x[xo + i]);
  fm[fo] = m;
}

/* In place: x = (max (x, gmax - 8) + 4) / 4 with gmax = fm[0]. */
__kernel void
kernel_mel_norm (__global float *x, uint xo, __global const float *fm,
    uint fo)
{
  float floor_ = fm[fo] - 8.0f;
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
