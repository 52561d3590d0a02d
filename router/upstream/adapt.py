"""Per-slot shaping of the chat messages just before they go upstream.

The translators (Anthropic, Responses) keep what a capable upstream can use: `cache_control`
markers on content parts and system prompts as one text part per block. Here each slot gets what
it can take:

- `cache_control` stays only where the upstream honours it: the slot's `cache_control: true`, or
  by default OpenRouter's `anthropic/...` and `google/...` models (OpenRouter passes the
  breakpoints on to Anthropic and Gemini). Elsewhere it is removed: OpenAI and vLLM do not know it.
  A user or assistant content that was a part array only to carry a marker (text parts only)
  becomes one string again, as it was before markers were kept.
- Local slots (vLLM, llama.cpp and the bundled server, whose chat templates often expect string
  contents) get text-only part arrays joined into one string, system prompts included.
"""

from __future__ import annotations

from typing import Any

from router.routing.pool import Slot

CACHING_PREFIXES = ("anthropic/", "google/")


def supports_cache_control(slot: Slot) -> bool:
    if slot.cache_control is not None:
        return slot.cache_control
    return "openrouter.ai" in slot.api_base and slot.model.startswith(CACHING_PREFIXES)


def _strip(part: Any) -> Any:
    if isinstance(part, dict) and "cache_control" in part:
        return {k: v for k, v in part.items() if k != "cache_control"}
    return part


def adapt_messages(slot: Slot, messages: list[dict]) -> list[dict]:
    keep_cache = supports_cache_control(slot)
    out = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            marked = any(isinstance(p, dict) and "cache_control" in p for p in content)
            parts = content if keep_cache else [_strip(p) for p in content]
            text_only = all(isinstance(p, dict) and p.get("type") == "text" for p in parts)
            unmarked = marked and not keep_cache and m.get("role") in ("user", "assistant")
            if text_only and (slot.local or unmarked):
                sep = "\n\n" if m.get("role") == "system" else "\n"
                m = {**m, "content": sep.join(str(p.get("text", "")) for p in parts)}
            elif parts is not content:
                m = {**m, "content": parts}
        out.append(m)
    return out
