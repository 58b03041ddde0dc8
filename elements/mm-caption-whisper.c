/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Speech transcription for mmllmsink: Whisper decoding of audio samples
 * and the running transcript.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include "mm-caption-whisper.h"
#include "mm-json.h"
#include "mm-transcript-merge.h"

struct _MmCaptionWhisper
{
  MmEngine *engine;
  MmWhisper *model;
  MmWhisperDecoder *decoder;
  MmGraph *input;               /* host tokens uploaded for the decoder */
  MmTranscriptMerge *merge;
  guint64 last_id;              /* newest sample transcribed */
  gboolean have_last;
  gchar *last_language;         /* of the newest window */
  MmWhisperTask last_task;
  gint64 last_arrival;          /* of the newest window's request */
};

gboolean
mm_caption_whisper_is_model (const gchar * model)
{
  gchar *path;
  MmJson *cfg;
  gboolean whisper;

  if (model == NULL || !g_file_test (model, G_FILE_TEST_IS_DIR))
    return FALSE;
  path = g_build_filename (model, "config.json", NULL);
  cfg = mm_json_new_from_file (path, 1 << 22, NULL);
  whisper = cfg && g_strcmp0 (mm_json_get_str (cfg, "model_type", "", NULL),
      "whisper") == 0;
  if (cfg)
    mm_json_free (cfg);
  g_free (path);
  return whisper;
}

MmCaptionWhisper *
mm_caption_whisper_load (const gchar * model, const gchar * device,
    GError ** error)
{
  MmCaptionWhisper *t = g_new0 (MmCaptionWhisper, 1);

  t->engine = mm_engine_get (device, error);
  if (t->engine)
    t->model = mm_whisper_load (t->engine, model, error);
  if (t->model && !mm_whisper_can_transcribe (t->model))
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
        "Whisper model \"%s\" cannot transcribe: it needs the decoder "
        "weights, tokenizer.json and the special tokens "
        "(generation_config.json)", model);
  else if (t->model)
    t->decoder = mm_whisper_decoder_new (t->model, error);
  if (t->decoder == NULL) {
    mm_caption_whisper_free (t);
    return NULL;
  }
  t->input = mm_graph_new (t->engine);
  t->merge = mm_transcript_merge_new ();
  return t;
}

void
mm_caption_whisper_free (MmCaptionWhisper * t)
{
  if (t == NULL)
    return;
  mm_transcript_merge_free (t->merge);
  if (t->input)
    mm_graph_free (t->input);
  if (t->decoder)
    mm_whisper_decoder_free (t->decoder);
  if (t->model)
    mm_whisper_free (t->model);
  if (t->engine)
    mm_engine_unref (t->engine);
  g_free (t->last_language);
  g_free (t);
}

const gchar *
mm_caption_whisper_id (MmCaptionWhisper * t)
{
  return mm_whisper_id (t->model);
}

gint
mm_caption_whisper_d_model (MmCaptionWhisper * t)
{
  return mm_whisper_d_model (t->model);
}

gint
mm_caption_whisper_n_audio_tokens (MmCaptionWhisper * t)
{
  return mm_whisper_n_audio_tokens (t->model);
}

void
mm_caption_whisper_settings_clear (MmCaptionWhisperSettings * st)
{
  g_clear_pointer (&st->language, g_free);
}

void
mm_caption_whisper_reset (MmCaptionWhisper * t)
{
  mm_transcript_merge_reset (t->merge);
  t->have_last = FALSE;
}

/* The decoder's cross-attention from the sample's tokens: the device
 * buffer when it is on our engine's queue, else the host copy. */
static gboolean
set_audio (MmCaptionWhisper * t, const MmCaptionSample * s, GError ** error)
{
  gint64 shape[2] = { s->n_tokens, s->dim };
  cl_command_queue queue = mm_engine_queue (t->engine);
  MmTensor view = { 0, }, *in;
  gsize offset = 0;
  const gfloat *host;

  if (gst_mm_tokens_get_queue (s->tokens) == queue
      && (view.buf = gst_mm_tokens_get_device (s->tokens, &offset))) {
    view.offset = offset;
    view.dtype = MM_DTYPE_F32;
    view = mm_tensor_view (&view, 2, shape);
    return mm_whisper_decoder_set_audio (t->decoder, &view, error);
  }

  host = gst_mm_tokens_get_host (s->tokens, error);
  if (host == NULL)
    return FALSE;
  mm_graph_reset (t->input);
  in = mm_graph_input_f32 (t->input, 2, shape, host);
  if (!mm_graph_finish (t->input, error))
    return FALSE;
  return mm_whisper_decoder_set_audio (t->decoder, in, error);
}

/* Decoder prompt: start [+ language + task] [+ no-timestamps]. */
static gint
prompt_tokens (const MmWhisperResult * r, const MmCaptionWhisperSettings * st)
{
  return 1 + (r->language ? 2 : 0) + (st->timestamps ? 0 : 1);
}

/* Transcribes one window into @pieces; adds its counts to @stats. */
static gboolean
transcribe (MmCaptionWhisper * t, const MmCaptionSample * s,
    const MmCaptionWhisperSettings * st, GArray * pieces, MmLlmStats * stats,
    GError ** error)
{
  MmWhisperOptions opt;
  MmWhisperResult r = { 0, };
  MmTranscriptWindow w = { 0, };
  MmTranscriptSegment *segs = NULL;
  gint64 t0 = g_get_monotonic_time ();
  guint i;

  if (!set_audio (t, s, error))
    return FALSE;
  stats->prefill_ms += (g_get_monotonic_time () - t0) / 1000.0;

  mm_whisper_options_init (&opt);
  opt.language = st->language;
  opt.task = st->task;
  opt.timestamps = st->timestamps;
  opt.max_tokens = st->max_tokens;
  if (!mm_whisper_decoder_transcribe (t->decoder, &opt, &r, error))
    return FALSE;

  stats->prompt_tokens += s->n_tokens + prompt_tokens (&r, st);
  stats->generated_tokens += r.ids->len;
  stats->decode_ms += r.decode_ms;
  g_free (t->last_language);
  t->last_language = g_strdup (r.language);

  /* the window: its span, else what the model's window covers */
  w.start = GST_CLOCK_TIME_IS_VALID (s->pts) ? (gint64) s->pts : 0;
  w.end = GST_CLOCK_TIME_IS_VALID (s->end) && s->end > s->pts ?
      (gint64) s->end : w.start + (gint64) gst_util_uint64_scale_int
      (mm_whisper_n_samples (t->model), GST_SECOND,
      mm_whisper_sampling_rate (t->model));
  if (r.segments->len > 0) {
    segs = g_new (MmTranscriptSegment, r.segments->len);
    for (i = 0; i < r.segments->len; i++) {
      MmWhisperSegment *ws = &g_array_index (r.segments, MmWhisperSegment, i);

      segs[i].t0 = ws->t0;
      segs[i].t1 = ws->t1;
      segs[i].text = ws->text;
    }
  }
  w.segments = segs;
  w.n_segments = r.segments->len;
  w.text = r.text;
  mm_transcript_merge_add (t->merge, &w, pieces);

  g_free (segs);
  mm_whisper_result_clear (&r);
  return TRUE;
}

/* A result of @pieces (NULL when empty): their text and times. */
static MmCaptionResult *
make_result (MmCaptionWhisper * t, GArray * pieces, const MmLlmStats * stats,
    gint64 arrival)
{
  MmCaptionResult *c;
  GString *text;
  guint i;

  if (pieces->len == 0)
    return NULL;

  c = g_new0 (MmCaptionResult, 1);
  c->segments = mm_caption_segments_new ();
  text = g_string_new (NULL);
  for (i = 0; i < pieces->len; i++) {
    MmTranscriptPiece *p = &g_array_index (pieces, MmTranscriptPiece, i);
    MmCaptionSegment seg;

    seg.start = (GstClockTime) MAX (p->start, 0);
    seg.end = (GstClockTime) MAX (p->end, p->start);
    seg.text = g_utf8_make_valid (p->text, -1);
    if (text->len > 0)
      g_string_append_c (text, ' ');
    g_string_append (text, seg.text);
    g_array_append_val (c->segments, seg);
  }
  c->text = g_string_free (text, FALSE);
  c->model = g_strdup (mm_whisper_id (t->model));
  c->start = g_array_index (c->segments, MmCaptionSegment, 0).start;
  c->end = g_array_index (c->segments, MmCaptionSegment,
      c->segments->len - 1).end;
  c->latency = GST_CLOCK_TIME_NONE;
  if (arrival > 0)
    c->latency = (g_get_monotonic_time () - arrival) * GST_USECOND;
  c->stats = *stats;
  c->task = g_strdup (t->last_task == MM_WHISPER_TASK_TRANSLATE ?
      "translate" : "transcribe");
  c->language = g_strdup (t->last_language);
  return c;
}

gboolean
mm_caption_whisper_run (MmCaptionWhisper * t, const MmCaptionRequest * r,
    const MmCaptionWhisperSettings * st, MmCaptionResult ** result,
    GError ** error)
{
  GArray *pieces = mm_transcript_pieces_new ();
  MmLlmStats stats = { 0, };
  gboolean ok = TRUE;
  guint i;

  *result = NULL;
  for (i = 0; ok && i < r->samples->len; i++) {
    MmCaptionSample *s = g_ptr_array_index (r->samples, i);

    if (t->have_last && s->id <= t->last_id)
      continue;                 /* transcribed for an earlier request */
    ok = transcribe (t, s, st, pieces, &stats, error);
    t->last_id = s->id;
    t->have_last = TRUE;
    t->last_task = st->task;
    t->last_arrival = r->arrival;
  }
  if (ok)
    *result = make_result (t, pieces, &stats, r->arrival);
  g_array_unref (pieces);
  return ok;
}

MmCaptionResult *
mm_caption_whisper_flush (MmCaptionWhisper * t)
{
  GArray *pieces = mm_transcript_pieces_new ();
  MmLlmStats stats = { 0, };
  MmCaptionResult *c;

  mm_transcript_merge_flush (t->merge, pieces);
  c = make_result (t, pieces, &stats, t->last_arrival);
  g_array_unref (pieces);
  mm_caption_whisper_reset (t);
  return c;
}
