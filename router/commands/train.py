"""Train a checkpoint from long-format labels (rows with split=test are never used).

    python -m router train --data assets/data/routerbench.jsonl.gz --out assets/checkpoint

Tiny CPU run: add --members 1 --epochs 20 --pca-dim 16.
"""

from __future__ import annotations


def configure(p):
    from router.training.train import TrainConfig

    d = TrainConfig()
    p.add_argument("--data", required=True, help="label file or folder (long format, CSV/JSONL)")
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("--models", default=None, help="comma-separated label columns to keep (default: all)")
    p.add_argument("--encoder", default=d.encoder.source, help="bundled name, HF id or local folder")
    p.add_argument("--encoder-kind", choices=["encoder", "decoder"], default=d.encoder.kind)
    p.add_argument("--layers", default="-1", help="comma-separated hidden-state indices (e.g. -1 or 4,6)")
    p.add_argument("--pooling", choices=["mean", "last", "cls"], default=d.encoder.pooling)
    p.add_argument("--max-tokens", type=int, default=d.encoder.max_tokens)
    p.add_argument("--prefix", default=d.encoder.prefix, help='text put before every query, e.g. "query: " for e5')
    p.add_argument("--quantize", choices=["int8"], default=None,
                   help="int8 dynamic quantization of the encoder's Linear layers on CPU (faster routing)")
    p.add_argument("--runtime", choices=["torch", "onnx", "static"], default=d.encoder.runtime,
                   help="what computes the features at routing time: torch, ONNX Runtime, or model2vec static "
                        "embeddings distilled from --encoder (docs/fastpath.md)")
    p.add_argument("--normalize", action="store_true", help="L2-normalize each pooled layer (e5 is trained that way)")
    p.add_argument("--truncation-side", choices=["left", "right"], default=d.encoder.truncation_side)
    p.add_argument("--pca-dim", type=int, default=d.pca_dim)
    p.add_argument("--hidden", default=",".join(map(str, d.hidden)), help="hidden widths, e.g. 256 or 256,128")
    p.add_argument("--members", type=int, default=d.members)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--patience", type=int, default=d.patience)
    p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--seed", type=int, default=d.seed)


def config_from_args(args):
    from router.model.encoder import EncoderSpec
    from router.training.train import TrainConfig

    spec = EncoderSpec(source=args.encoder, kind=args.encoder_kind,
                       layers=tuple(int(x) for x in args.layers.split(",")), pooling=args.pooling,
                       max_tokens=args.max_tokens, truncation_side=args.truncation_side,
                       prefix=args.prefix, normalize=args.normalize, quantize=args.quantize,
                       runtime=args.runtime)
    return TrainConfig(encoder=spec, pca_dim=args.pca_dim, hidden=tuple(int(x) for x in args.hidden.split(",") if x),
                       members=args.members, epochs=args.epochs, patience=args.patience, dropout=args.dropout,
                       weight_decay=args.weight_decay, lr=args.lr, seed=args.seed)


def run(args) -> int:
    from router.training.data import read_labels
    from router.training.train import train

    table = read_labels(args.data)
    if args.models:
        table = table.select_models([m.strip() for m in args.models.split(",") if m.strip()])
    ckpt = train(table, args.out, config_from_args(args))
    v = ckpt.meta["metrics"]["validation"]
    t = ckpt.meta["training"]
    print(f"trained on {t['n_train']} questions (+{t['n_val']} validation), {len(ckpt.slots)} slots")
    print(f"validation: mean AUROC {v['mean_auroc']}, mean Brier {v['mean_brier']}")
    print(f"checkpoint written to {args.out}")
    return 0
