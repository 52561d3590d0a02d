"""Incremental detokenizing for streamed answers, with transformers' own streamer logic.

`TextStreamer` holds back a word or a multi-byte character until it is complete and decodes only
the current line's tokens at each step (not the whole answer: that was O(n^2) in answer length).
`Pieces` collects its text instead of printing it, for the decode loop in model.py.
"""

from __future__ import annotations

from transformers import TextStreamer


class Pieces(TextStreamer):
    def __init__(self, tokenizer):
        super().__init__(tokenizer, skip_prompt=False, skip_special_tokens=True)
        self._out: list[str] = []
        self.done = False

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self._out.append(text)
        self.done = self.done or stream_end

    def take(self) -> str:
        """The text finalized since the last call."""
        out, self._out = "".join(self._out), []
        return out
