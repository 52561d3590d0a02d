"""Score many texts with one checkpoint: here (`engine="local"`) or on Ray Data (`engine="ray"`).

Both engines cut the texts into the same batches (sorted by length so that little padding is
computed, then `batch_size` at a time) and score each batch the way the proxy does: tokenize,
one encoder forward, the head. A Ray worker is a `CheckpointScorer` actor: it loads the checkpoint
and its encoder once, then scores every batch it is given, so N workers cost N model loads.

    python -m router audit replay audit.jsonl --engine ray [--ray-address ray://head:10001] [--workers 8]
    python -m router score ... --engine ray

Ray is an extra (`pip install -r requirements-ray.txt`). Without --ray-address a local Ray
instance is started with `workers` CPUs; with one, the nodes must have this package installed
(or ship it with a runtime_env working_dir), and the checkpoint directory and encoder cache
(ROUTER_CACHE) must be readable at the same paths on every node.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from router.errors import ConfigError

ENGINES = ("local", "ray")


def _batches(texts: Sequence[str], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
    return [order[s: s + batch_size] for s in range(0, len(order), batch_size)]


class CheckpointScorer:
    """Loads a checkpoint and its encoder once; scores batches of texts -> (P [n, slots], tokens [n])."""

    def __init__(self, checkpoint_dir: str):
        from router.model.encoder import get_encoder
        from router.model.encoder_probe import check as check_encoder
        from router.model.head import load_checkpoint

        self.checkpoint = load_checkpoint(checkpoint_dir)
        self.encoder = get_encoder(self.checkpoint.encoder_spec)
        # Each Ray node reads its own encoder cache: a node holding another model under the same
        # name would score silently wrong, so every worker checks what it loaded.
        check_encoder(self.checkpoint, self.encoder)

    @classmethod
    def loaded(cls, checkpoint, encoder) -> CheckpointScorer:
        """From a router's already loaded checkpoint and encoder (no second load)."""
        self = cls.__new__(cls)
        self.checkpoint, self.encoder = checkpoint, encoder
        return self

    def score(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        ids, counts = self.encoder.tokenize(list(texts))
        P = self.checkpoint.head.predict(self.encoder.encode_ids(ids))
        return P.astype(np.float64), np.asarray(counts, dtype=np.int64)

    def __call__(self, row: dict) -> dict:  # a Ray Data row: one whole batch, so batches match the local engine
        P, counts = self.score([str(t) for t in row["texts"]])
        return {"k": row["k"], "p": P.tolist(), "tokens": counts.tolist()}


def score_texts(checkpoint_dir: str | Path, texts: Sequence[str], *, engine: str = "local",
                batch_size: int = 32, ray_address: str | None = None, workers: int = 2,
                progress: bool = True, scorer: CheckpointScorer | None = None) -> tuple[np.ndarray, np.ndarray]:
    """P(correct) [len(texts), checkpoint slots] and the encoder's token counts, in input order."""
    if engine not in ENGINES:
        raise ConfigError("--engine", [f"must be one of {', '.join(ENGINES)}, got {engine!r}"])
    texts = list(texts)
    batches = _batches(texts, max(1, int(batch_size)))
    if engine == "ray":
        results = _run_ray(str(checkpoint_dir), texts, batches, ray_address, workers, progress)
    else:
        scorer = scorer or CheckpointScorer(str(checkpoint_dir))
        results = {}
        bar = _bar(len(texts), progress, "scoring")
        for k, b in enumerate(batches):
            results[k] = scorer.score([texts[i] for i in b])
            bar.update(len(b))
        bar.close()
    n_slots = next(iter(results.values()))[0].shape[1] if results else 0
    P = np.zeros((len(texts), n_slots))
    counts = np.zeros(len(texts), dtype=np.int64)
    for k, b in enumerate(batches):
        P[b], counts[b] = results[k]
    return P, counts


def _bar(total: int, progress: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="q", disable=not progress)


def _run_ray(checkpoint_dir: str, texts: list[str], batches: list[list[int]], address: str | None,
             workers: int, progress: bool) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    try:
        import ray
    except ImportError:
        raise ConfigError("--engine ray", ["Ray is not installed: pip install -r requirements-ray.txt"]) from None
    from router.paths import PROJECT_ROOT

    workers = max(1, int(workers))
    started = False
    if not ray.is_initialized():
        # The workers import this package and find the converted encoder where the driver does.
        env = {k: os.environ[k] for k in ("ROUTER_CACHE", "HF_HUB_OFFLINE", "HF_HOME") if k in os.environ}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
        kw = {"address": address} if address else {"num_cpus": workers, "include_dashboard": False}
        ray.init(runtime_env={"env_vars": env}, log_to_driver=False, **kw)
        started = True
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # one tqdm bar below instead of Ray's per-operator bars
        rows = [{"k": k, "texts": [texts[i] for i in b]} for k, b in enumerate(batches)]
        ds = ray.data.from_items(rows, override_num_blocks=min(len(rows), workers * 4) or 1)
        out = ds.map(CheckpointScorer, fn_constructor_args=(checkpoint_dir,),
                     compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1)
        results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        bar = _bar(len(texts), progress, f"scoring on ray ({workers} workers)")
        for row in out.iter_rows():
            k = int(row["k"])
            results[k] = (np.asarray(row["p"], dtype=np.float64), np.asarray(row["tokens"], dtype=np.int64))
            bar.update(len(batches[k]))
        bar.close()
        return results
    finally:
        if started:
            ray.shutdown()
