"""Score questions with a checkpoint: P(correct) per slot for every row.

    python -m router score --checkpoint assets/checkpoint --input questions.jsonl --output preds.jsonl

Input rows are {"id": ..., "question": ...}; output rows are {"id": ..., "p": {slot: probability}}.
"""

from __future__ import annotations

import json
from pathlib import Path


def configure(p):
    p.add_argument("--checkpoint", required=True, help="checkpoint directory")
    p.add_argument("--input", required=True, help="questions: .txt, .jsonl or .csv (id optional, question)")
    p.add_argument("--output", required=True, help="JSONL to write")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="ray: score on Ray Data actors, each loading the checkpoint once (requirements-ray.txt)")
    p.add_argument("--ray-address", default=None, help="--engine ray: an existing cluster (default: start one here)")
    p.add_argument("--workers", type=int, default=2, help="--engine ray: scoring actors")


def read_questions(path: Path) -> tuple[list[str], list[str]]:
    from router.training.questions import read_questions as read

    items = read(path)
    return [q.id for q in items], [q.question for q in items]


def run(args) -> int:
    from tqdm.auto import tqdm

    from router.files import atomic_write
    from router.model.encoder import get_encoder
    from router.model.head import load_checkpoint

    ckpt = load_checkpoint(args.checkpoint)
    ids, qs = read_questions(Path(args.input))
    if getattr(args, "engine", "local") == "ray":
        return _run_ray(args, ckpt, ids, qs)
    enc = get_encoder(ckpt.encoder_spec)
    out = Path(args.output)
    with atomic_write(out) as fh, tqdm(total=len(qs), desc="scoring", unit="q") as bar:
        for s in range(0, len(qs), args.batch_size):
            P = ckpt.head.predict(enc.features(qs[s: s + args.batch_size], batch_size=args.batch_size))
            for qid, row in zip(ids[s: s + args.batch_size], P):
                fh.write(json.dumps({"id": qid, "p": {m: round(float(v), 6) for m, v in zip(ckpt.slots, row)}}) + "\n")
            bar.update(len(P))
    print(f"wrote {len(qs)} rows to {out}")
    return 0


def _run_ray(args, ckpt, ids: list[str], qs: list[str]) -> int:
    """The same rows as the local path, scored on Ray Data (router/routing/parallel.py)."""
    from router.routing.parallel import score_texts

    P, _ = score_texts(args.checkpoint, qs, engine="ray", batch_size=args.batch_size,
                       ray_address=args.ray_address, workers=args.workers)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for qid, row in zip(ids, P):
            fh.write(json.dumps({"id": qid, "p": {m: round(float(v), 6) for m, v in zip(ckpt.slots, row)}}) + "\n")
    tmp.replace(out)
    print(f"wrote {len(qs)} rows to {out} (ray, {args.workers} workers)")
    return 0
