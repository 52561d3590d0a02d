"""Cut a long text to what the encoder window can use *before* tokenizing it.

Tokenizing a 10 MB request only to keep its last 256 tokens took seconds (holding the tokenizer
lock, so every other request waited) and left the memory of millions of ids behind. A token is
rarely longer than a few characters, so keeping `budget * CHARS_PER_TOKEN` characters (plus a
margin) from the side the spec keeps is enough to fill the window; when it is not (a text of very
long tokens), the caller widens the cut. The token count of the whole text is then estimated from
the kept part (scaled by length), which is what costs need; `Encoder.count_tokens` stays exact.
"""

from __future__ import annotations

CHARS_PER_TOKEN = 8  # generous: English runs ~4 characters per token, code and CJK fewer
MARGIN_CHARS = 64


def window_chars(budget_tokens: int) -> int:
    return int(budget_tokens) * CHARS_PER_TOKEN + MARGIN_CHARS


def cut(text: str, n_chars: int, side: str) -> str:
    """The `n_chars` characters the window keeps: the end for left truncation, else the start."""
    if len(text) <= n_chars:
        return text
    return text[-n_chars:] if side == "left" else text[:n_chars]


def estimate_total(kept_tokens: int, kept_chars: int, total_chars: int) -> int:
    if kept_chars >= total_chars or kept_chars <= 0:
        return int(kept_tokens)
    return int(round(kept_tokens * total_chars / kept_chars))
