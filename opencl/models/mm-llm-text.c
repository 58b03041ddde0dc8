/* TEMP (not committed): placeholder until the tokenizer branch lands */
#include "mm-llm-load.h"
MmLlmText *
mm_llm_text_new (MmLlmSource * src, gint vocab, GError ** error)
{
  g_set_error (error, MM_ENGINE_ERROR, MM_ENGINE_ERROR_INVALID, "no tokenizer yet");
  return NULL;
}
void
mm_llm_text_free (MmLlmText * text)
{
}
