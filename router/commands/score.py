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
