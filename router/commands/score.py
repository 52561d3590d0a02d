"""Score questions with a checkpoint: P(correct) per slot for every row.

    python -m router score --checkpoint assets/checkpoint --input questions.jsonl --output preds.jsonl

Input rows are {"id": ..., "question": ...}; output rows are {"id": ..., "p": {slot: probability}}.
Each distinct question is encoded once: a long-format label file (one row per question x model) can be
scored as it is, one output row per input row.
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
    import numpy as np
    from tqdm.auto import tqdm

    from router.files import atomic_write, check_output_file
    from router.model.encoder import get_encoder
    from router.model.encoder_probe import check as check_encoder
    from router.model.head import load_checkpoint

    check_output_file(args.output, "--output", {"--input": args.input, "--checkpoint": args.checkpoint})
    ckpt = load_checkpoint(args.checkpoint)
    ids, qs = read_questions(Path(args.input))
    distinct = list(dict.fromkeys(qs))
    if getattr(args, "engine", "local") == "ray":
        from router.routing.parallel import score_texts

        P, _ = score_texts(args.checkpoint, distinct, engine="ray", batch_size=args.batch_size,
                           ray_address=args.ray_address, workers=args.workers)
        how = f"ray, {args.workers} workers"
    else:
        enc = get_encoder(ckpt.encoder_spec)
        check_encoder(ckpt, enc)
        parts = []
        with tqdm(total=len(distinct), desc="scoring", unit="q") as bar:
            for s in range(0, len(distinct), args.batch_size):
                batch = distinct[s: s + args.batch_size]
                parts.append(ckpt.head.predict(enc.features(batch, batch_size=args.batch_size)))
                bar.update(len(batch))
        P = np.concatenate(parts)
        how = "local"
    row_of = {q: i for i, q in enumerate(distinct)}
    out = Path(args.output)
    with atomic_write(out) as fh:
        for qid, q in zip(ids, qs):
            fh.write(json.dumps({"id": qid, "p": {m: round(float(v), 6) for m, v in zip(ckpt.slots, P[row_of[q]])}})
                     + "\n")
    print(f"wrote {len(qs)} rows ({len(distinct)} distinct questions, {how}) to {out}")
    return 0
