"""Distil a shallower encoder from the default one, for faster routing (docs/fastpath.md).

    python -m router distill --data labels.csv --layers 4 --out students/e5-L4
    python -m router train --data labels.csv --encoder-spec students/e5-L4/student.json --out ck

The student is the encoder's embeddings + LAYERS of its blocks, trained to reproduce its features on
the questions of --data (training rows only; the labels are not read), so any text the router will
see can teach it. The student's blocks and its spec go to --out; `train --encoder-spec` then trains a
checkpoint on it like on any encoder, and the checkpoint carries the blocks.
"""

from __future__ import annotations


def configure(p):
    from router.training.distill import DistillConfig

    d = DistillConfig()
    p.add_argument("--data", required=True, help="label file or folder whose non-test questions are the training text")
    p.add_argument("--out", required=True, help="folder for student_overlay.safetensors and student.json")
    p.add_argument("--layers", type=int, default=d.layers, help="blocks the student keeps (of 12 for e5-small)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--max-texts", type=int, default=None, help="use at most this many questions (a random sample)")
    p.add_argument("--features-cache", default=None, help="folder of cached teacher features (as train's)")
    p.add_argument("--seed", type=int, default=d.seed)


def run(args) -> int:
    import numpy as np

    from router.files import check_output_dir
    from router.model.features import cached_features
    from router.training.data import read_labels
    from router.training.distill import DistillConfig, distill, save_student
    from router.training.train import default_encoder, training_rows

    check_output_dir(args.out)
    table = training_rows(read_labels(args.data))
    texts = list(dict.fromkeys(table.questions))
    if args.max_texts and len(texts) > args.max_texts:
        keep = np.random.default_rng(args.seed).choice(len(texts), size=args.max_texts, replace=False)
        texts = [texts[i] for i in sorted(keep)]
    teacher = default_encoder()
    targets = cached_features(teacher, texts, progress=True, cache=args.features_cache)
    cfg = DistillConfig(layers=args.layers, epochs=args.epochs, lr=args.lr, seed=args.seed)
    r = distill(teacher, texts, targets, cfg)
    spec = save_student(teacher, r, args.out)
    best = r["log"][r["best_epoch"]]["val_loss"]
    print(f"distilled {len(texts)} questions into {args.layers} blocks in {r['seconds']:.0f} s: held-out 1 - cos "
          f"{best:.4f} (the teacher's blocks {r['init_blocks']} untrained: {r['log'][0]['val_loss']:.4f})")
    print(f"student written to {args.out}; train on it with --encoder-spec {args.out}/student.json "
          f"(reads layer {spec.layers[0]}, runtime {spec.runtime})")
    return 0
