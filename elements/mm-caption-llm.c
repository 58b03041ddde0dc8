/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The LLM side of mmllmsink: the mm_llm backend and running one request.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include "mm-caption-llm.h"

/* ---- the mm_llm backend ---- */

typedef struct
{
  MmEngine *engine;
  MmLlm *llm;
} MmLlmHandle;

static gpointer
mm_llm_backend_load (const gchar * model, const gchar * device, GError ** error)
{
  MmEngine *engine = mm_engine_get (device, error);
  MmLlmHandle *h;
  MmLlm *llm;

  if (engine == NULL)
    return NULL;
  llm = mm_llm_load (engine, model, error);
  if (llm == NULL) {
    mm_engine_unref (engine);
    return NULL;
  }
  h = g_new0 (MmLlmHandle, 1);
  h->engine = engine;
  h->llm = llm;
  return h;
}

static void
mm_llm_backend_free (gpointer handle)
{
  MmLlmHandle *h = handle;

  mm_llm_free (h->llm);
  mm_engine_unref (h->engine);
  g_free (h);
}

static const gchar *
mm_llm_backend_id (gpointer handle)
{
  return mm_llm_id (((MmLlmHandle *) handle)->llm);
}

static gint
mm_llm_backend_hidden_size (gpointer handle)
{
  return mm_llm_hidden_size (((MmLlmHandle *) handle)->llm);
}

static gint
mm_llm_backend_context_size (gpointer handle)
{
  return mm_llm_context_size (((MmLlmHandle *) handle)->llm);
}

static MmEngine *
mm_llm_backend_engine (gpointer handle)
{
  return ((MmLlmHandle *) handle)->engine;
}

static gint
mm_llm_backend_count (gpointer handle, const MmLlmRequest * req,
    GError ** error)
{
  return mm_llm_count_prompt_tokens (((MmLlmHandle *) handle)->llm, req, error);
}

static gchar *
mm_llm_backend_generate (gpointer handle, const MmLlmRequest * req,
    MmLlmTokenFunc func, gpointer user_data, MmLlmStats * stats,
    GError ** error)
{
  return mm_llm_generate (((MmLlmHandle *) handle)->llm, req, func,
      user_data, stats, error);
}

static const MmCaptionBackend mm_llm_backend = {
  mm_llm_backend_load,
  mm_llm_backend_free,
  mm_llm_backend_id,
  mm_llm_backend_hidden_size,
  mm_llm_backend_context_size,
  mm_llm_backend_engine,
  mm_llm_backend_count,
  mm_llm_backend_generate,
};

const MmCaptionBackend *
mm_caption_llm_backend (void)
{
  return &mm_llm_backend;
}

/* ---- settings and results ---- */

void
mm_caption_settings_clear (MmCaptionSettings * st)
{
  g_clear_pointer (&st->prompt, g_free);
  g_clear_pointer (&st->system_prompt, g_free);
}

static void
segment_clear (MmCaptionSegment * s)
{
  g_free (s->text);
}

GArray *
mm_caption_segments_new (void)
{
  GArray *a = g_array_new (FALSE, TRUE, sizeof (MmCaptionSegment));

  g_array_set_clear_func (a, (GDestroyNotify) segment_clear);
  return a;
}

void
mm_caption_result_free (MmCaptionResult * c)
{
  if (c == NULL)
    return;
  g_free (c->text);
  g_free (c->prompt);
  g_free (c->model);
  if (c->segments)
    g_array_unref (c->segments);
  g_free (c->task);
  g_free (c->language);
  g_free (c);
}

MmCaptionResult *
mm_caption_result_copy (const MmCaptionResult * c)
{
  MmCaptionResult *copy = g_memdup2 (c, sizeof (*c));
  guint i;

  copy->text = g_strdup (c->text);
  copy->prompt = g_strdup (c->prompt);
  copy->model = g_strdup (c->model);
  copy->task = g_strdup (c->task);
  copy->language = g_strdup (c->language);
  if (c->segments) {
    copy->segments = mm_caption_segments_new ();
    for (i = 0; i < c->segments->len; i++) {
      MmCaptionSegment s = g_array_index (c->segments, MmCaptionSegment, i);

      s.text = g_strdup (s.text);
      g_array_append_val (copy->segments, s);
    }
  }
  return copy;
}

GstStructure *
mm_caption_result_to_structure (const MmCaptionResult * c)
{
  GstStructure *s = gst_structure_new ("mm-caption",
      "text", G_TYPE_STRING, c->text,
      "prompt", G_TYPE_STRING, c->prompt,
      "start", G_TYPE_UINT64, (guint64) c->start,
      "end", G_TYPE_UINT64, (guint64) c->end,
      "latency", G_TYPE_UINT64, (guint64) c->latency,
      "prompt-tokens", G_TYPE_INT, c->stats.prompt_tokens,
      "generated-tokens", G_TYPE_INT, c->stats.generated_tokens,
      "reused-tokens", G_TYPE_INT, c->stats.reused_tokens,
      "model", G_TYPE_STRING, c->model,
      "prefill-ms", G_TYPE_DOUBLE, c->stats.prefill_ms,
      "decode-ms", G_TYPE_DOUBLE, c->stats.decode_ms, NULL);
  GValue segments = G_VALUE_INIT;
  guint i;

  if (c->task == NULL)
    return s;

  g_value_init (&segments, GST_TYPE_ARRAY);
  for (i = 0; c->segments && i < c->segments->len; i++) {
    const MmCaptionSegment *seg = &g_array_index (c->segments,
        MmCaptionSegment, i);
    GValue v = G_VALUE_INIT;

    g_value_init (&v, GST_TYPE_STRUCTURE);
    g_value_take_boxed (&v, gst_structure_new ("segment",
            "start", G_TYPE_UINT64, (guint64) seg->start,
            "end", G_TYPE_UINT64, (guint64) seg->end,
            "text", G_TYPE_STRING, seg->text, NULL));
    gst_value_array_append_and_take_value (&segments, &v);
  }
  gst_structure_set (s, "task", G_TYPE_STRING, c->task,
      "language", G_TYPE_STRING, c->language, NULL);
  gst_structure_take_value (s, "segments", &segments);
  return s;
}

void
mm_caption_result_print (const MmCaptionResult * c, FILE * out)
{
  gchar a[32], b[32];
  guint i;

  if (c->segments == NULL || c->segments->len == 0) {
    fprintf (out, "[%s --> %s] %s\n", mm_caption_format_time (c->start, '.',
            a), mm_caption_format_time (c->end, '.', b), c->text);
  }
  for (i = 0; c->segments && i < c->segments->len; i++) {
    const MmCaptionSegment *seg = &g_array_index (c->segments,
        MmCaptionSegment, i);

    fprintf (out, "[%s --> %s] %s\n", mm_caption_format_time (seg->start,
            '.', a), mm_caption_format_time (seg->end, '.', b), seg->text);
  }
  fflush (out);
}

void
mm_caption_result_to_caption (const MmCaptionResult * c, MmCaption * out)
{
  memset (out, 0, sizeof (*out));
  out->text = c->text;
  out->prompt = c->prompt;
  out->model = c->model;
  out->start = c->start;
  out->end = c->end;
  out->latency = c->latency;
  out->prompt_tokens = c->stats.prompt_tokens;
  out->generated_tokens = c->stats.generated_tokens;
  out->reused_tokens = c->stats.reused_tokens;
  if (c->segments) {
    out->segments = (const MmCaptionSegment *) c->segments->data;
    out->n_segments = c->segments->len;
  }
  out->task = c->task;
  out->language = c->language;
}

/* ---- one request ---- */

/* The media of @r for the LLM; FALSE with @error when a payload cannot be
 * read. */
static gboolean
fill_media (const MmCaptionBackend * backend, gpointer llm,
    const MmCaptionRequest * r, MmLlmMedia * media, GError ** error)
{
  MmEngine *engine = backend->engine ? backend->engine (llm) : NULL;
  cl_command_queue queue = engine ? mm_engine_queue (engine) : NULL;
  guint i;

  for (i = 0; i < r->samples->len; i++) {
    MmCaptionSample *s = g_ptr_array_index (r->samples, i);
    MmLlmMedia *m = &media[i];

    m->kind = s->modality == GST_MM_MODALITY_AUDIO ? MM_MEDIA_AUDIO :
        MM_MEDIA_IMAGE;
    m->n_tokens = s->n_tokens;
    m->dim = s->dim;
    m->id = s->id;
    m->rows = s->rows;
    m->cols = s->cols;
    /* engines are shared per device: the same queue means the payload's
     * buffer lives in the LLM's context and is read in order */
    if (queue && gst_mm_tokens_get_queue (s->tokens) == queue)
      m->buf = gst_mm_tokens_get_device (s->tokens, &m->offset);
    if (m->buf == NULL) {
      m->host = gst_mm_tokens_get_host (s->tokens, error);
      if (m->host == NULL)
        return FALSE;
    }
  }
  return TRUE;
}

/* Leaves out the oldest media until prompt and answer fit the LLM's
 * context.  Returns the prompt tokens, 0 when the prompt alone does not
 * fit, -1 on error. */
static gint
fit_request (const MmCaptionBackend * backend, gpointer llm,
    MmLlmRequest * req, GError ** error)
{
  gint ctx = backend->context_size (llm);
  gint answer = MIN (req->sampling.max_tokens, ctx / 2);
  gint n = backend->count_prompt_tokens (llm, req, error);

  while (n >= 0 && req->n_media > 0 && n + answer > ctx) {
    req->media++;
    req->n_media--;
    n = backend->count_prompt_tokens (llm, req, error);
  }
  if (n < 0)
    return -1;
  return n < ctx ? n : 0;
}

MmCaptionRun
mm_caption_llm_run (const MmCaptionBackend * backend, gpointer llm,
    const MmCaptionRequest * r, const MmCaptionSettings * st,
    MmLlmTokenFunc keep_going, gpointer user_data,
    MmCaptionResult ** result, GError ** error)
{
  MmLlmMedia *media = g_new0 (MmLlmMedia, MAX (r->samples->len, 1));
  MmLlmRequest req = { 0, };
  MmLlmStats stats = { 0, };
  MmCaptionRun ret = MM_CAPTION_RUN_FAILED;
  MmCaptionResult *c;
  gchar *text;
  gint n;

  *result = NULL;
  req.system_prompt = st->system_prompt;
  req.prompt = st->prompt;
  req.media = media;
  req.n_media = r->samples->len;
  req.sampling = st->sampling;

  if (!fill_media (backend, llm, r, media, error))
    goto done;
  n = fit_request (backend, llm, &req, error);
  if (n <= 0) {
    ret = n == 0 ? MM_CAPTION_RUN_REFUSED : MM_CAPTION_RUN_FAILED;
    goto done;
  }

  text = backend->generate (llm, &req, keep_going, user_data, &stats, error);
  if (text == NULL)
    goto done;

  c = g_new0 (MmCaptionResult, 1);
  c->text = g_utf8_make_valid (g_strstrip (text), -1);
  c->prompt = g_strdup (st->prompt);
  c->model = g_strdup (backend->id (llm));
  c->start = r->start;
  c->end = r->end;
  c->latency = (g_get_monotonic_time () - r->arrival) * GST_USECOND;
  c->stats = stats;
  g_free (text);
  *result = c;
  ret = MM_CAPTION_RUN_OK;

done:
  g_free (media);
  return ret;
}
