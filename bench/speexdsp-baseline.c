/*
 * libspeexdsp baseline for `npm run bench`: times speex_resampler_process_int on
 * 20 ms mono frames, one call per frame, the way the bridge calls its own
 * resampler. Our timing harness; libspeexdsp itself comes from Debian's
 * libspeexdsp-dev. Usage: speexdsp-baseline FROM TO QUALITY FRAMES
 * Prints one JSON object: {"mean":us,"p50":us,"p99":us,"max":us}.
 */
#include <speex/speex_resampler.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <time.h>

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 5) return 2;
  int from = atoi(argv[1]), to = atoi(argv[2]), q = atoi(argv[3]), frames = atoi(argv[4]);
  int err = 0;
  SpeexResamplerState *st = speex_resampler_init(1, from, to, q, &err);
  if (!st) return 3;
  spx_uint32_t in_len = from / 50;
  spx_int16_t *in = malloc(sizeof(spx_int16_t) * in_len);
  spx_int16_t *out = malloc(sizeof(spx_int16_t) * (to / 50 + 64));
  for (spx_uint32_t i = 0; i < in_len; i++) in[i] = (spx_int16_t)(8000 * sin(i * 0.05));
  double *t = malloc(sizeof(double) * frames);
  for (int w = 0; w < 2000; w++) {
    spx_uint32_t il = in_len, ol = to / 50 + 64;
    speex_resampler_process_int(st, 0, in, &il, out, &ol);
  }
  double sum = 0;
  for (int f = 0; f < frames; f++) {
    spx_uint32_t il = in_len, ol = to / 50 + 64;
    double t0 = now_us();
    speex_resampler_process_int(st, 0, in, &il, out, &ol);
    t[f] = now_us() - t0;
    sum += t[f];
  }
  qsort(t, frames, sizeof(double), cmp);
  printf("{\"mean\":%.4f,\"p50\":%.4f,\"p99\":%.4f,\"max\":%.4f}\n", sum / frames, t[frames / 2], t[(int)(frames * 0.99)], t[frames - 1]);
  speex_resampler_destroy(st);
  return 0;
}
