"""Train a checkpoint from long-format labels (rows with split=test are never used).

    python -m router train --data assets/data/routerbench.jsonl.gz --out assets/checkpoint
    python -m router train --extend assets/checkpoint --data new_model_labels.csv --out ck-plus

The head family and its settings are chosen by cross-validation on the data (print-out and
router.json "training.search"); --head NAME forces one family (logistic, knn, mlp, irt).
--extend adds the models of NEW_LABELS that CHECKPOINT lacks as new slots, fitted on the frozen
encoder and head (the existing slots' P do not change).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from router.commands.options import comma_list


def _is_e5(source: str) -> bool:
    return "e5" in source.lower()


def configure(p):
    from router.training.train import TrainConfig

    d = TrainConfig()
    p.add_argument("--data", required=True, help="label file or folder (long format, CSV/JSONL)")
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("--head", default=d.head,
                   help="head family: auto (CV search over all, default) or one of logistic, knn, mlp, irt")
    p.add_argument("--cv-folds", type=int, default=d.cv_folds, help="folds of the head search")
    p.add_argument("--no-calibrate", action="store_true", help="skip the per-model calibration maps")
    p.add_argument("--features-cache", default=None,
                   help="folder for cached encoder features (default: ~/.cache/prefill-router/features)")
    p.add_argument("--extend", default=None, metavar="CHECKPOINT",
                   help="add the models of --data that CHECKPOINT lacks as new slots (frozen encoder and head)")
    p.add_argument("--models", default=None, help="comma-separated label columns to keep (default: all)")
    p.add_argument("--encoder", default=d.encoder.source, help="bundled name, HF id or local folder")
    p.add_argument("--encoder-spec", default=None, metavar="JSON_FILE",
                   help="the whole encoder spec from a file (a router.json's \"encoder\", or the student.json "
                        "`distill` writes); replaces --encoder and the other encoder flags but --quantize and --runtime")
    p.add_argument("--encoder-kind", choices=["encoder", "decoder"], default=d.encoder.kind)
    p.add_argument("--layers", default="-1", help="comma-separated hidden-state indices (e.g. -1 or 4,6)")
    p.add_argument("--pooling", choices=["mean", "last", "cls"], default=d.encoder.pooling)
    p.add_argument("--max-tokens", type=int, default=d.encoder.max_tokens)
    p.add_argument("--prefix", default=None,
                   help='text put before every query (default: "query: " for e5 encoders, none otherwise)')
    p.add_argument("--quantize", choices=["int8"], default=None,
                   help="int8 dynamic quantization of the encoder's Linear layers on CPU (faster routing)")
    p.add_argument("--runtime", choices=["torch", "onnx", "static"], default=None,
                   help="what computes the features at routing time: torch, ONNX Runtime, or model2vec static "
                        "embeddings distilled from --encoder (docs/fastpath.md). Default: onnx where the ONNX "
                        "export computes the same features (an encoder, one layer, mean or cls pooling, no "
                        "--quantize), else torch")
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                   help="L2-normalize each pooled layer (default: on for e5 encoders, which are trained that way)")
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
    p.add_argument("--finetune-layers", type=int, default=d.finetune_layers, metavar="N",
                   help="also tune the encoder's top N blocks on the labels (minutes on a CPU); kept only when "
                        "they beat the frozen encoder on held-out training questions (router.json training.finetune)")


def spec_from_file(path: str):
    """An encoder spec from JSON: {"student": spec} (distill), {"encoder": spec} (router.json) or the spec.
    A relative overlay path is read next to the file."""
    import json
    from pathlib import Path

    from router.errors import CheckpointError, InputError
    from router.model.encoder import EncoderSpec

    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"--encoder-spec {path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"--encoder-spec {path}: not a JSON file ({exc})") from None
    if isinstance(d, dict):
        d = d.get("student") or d.get("encoder") or d
    if not isinstance(d, dict) or "source" not in d:
        raise InputError(f"--encoder-spec {path}: expected an encoder spec object with a \"source\" "
                         "(or one under \"student\" or \"encoder\")")
    if d.get("overlay") and not Path(d["overlay"]).is_absolute():
        d = {**d, "overlay": str((p.parent / d["overlay"]).resolve())}
    try:
        return EncoderSpec.from_json(d)
    except CheckpointError as exc:
        raise InputError(f"--encoder-spec {path}: {exc}") from None


def config_from_args(args):
    from router.model.encoder import EncoderSpec
    from router.training.train import TrainConfig

    spec = EncoderSpec(source=args.encoder, kind=args.encoder_kind,
                       layers=tuple(int(x) for x in args.layers.split(",")), pooling=args.pooling,
                       max_tokens=args.max_tokens, truncation_side=args.truncation_side,
                       prefix=(("query: " if _is_e5(args.encoder) else "") if args.prefix is None else args.prefix),
                       normalize=_is_e5(args.encoder) if args.normalize is None else args.normalize,
                       quantize=args.quantize, runtime=args.runtime or "torch")
    if args.runtime is None and spec.exportable:
        spec = replace(spec, runtime="onnx")
    if getattr(args, "encoder_spec", None):
        spec = spec_from_file(args.encoder_spec)
        if args.quantize or args.runtime:
            spec = replace(spec, quantize=args.quantize or spec.quantize, runtime=args.runtime or spec.runtime)
    return TrainConfig(encoder=spec, pca_dim=args.pca_dim, hidden=tuple(int(x) for x in args.hidden.split(",") if x),
                       members=args.members, epochs=args.epochs, patience=args.patience, dropout=args.dropout,
                       weight_decay=args.weight_decay, lr=args.lr, seed=args.seed, head=args.head,
                       cv_folds=args.cv_folds, calibrate=not args.no_calibrate, features_cache=args.features_cache,
                       finetune_layers=args.finetune_layers)


EXTEND_OPTIONS = {"data", "out", "extend", "models", "features_cache", "seed"}  # what --extend uses


def check_extend_options(args) -> None:
    """--extend keeps CHECKPOINT's encoder and head: a flag that would change them is refused, not
    silently ignored (--encoder X with --extend used to write a checkpoint still reading the old one)."""
    import argparse

    from router.errors import InputError

    p = argparse.ArgumentParser()
    configure(p)
    defaults = vars(p.parse_args(["--data", "-", "--out", "-"]))
    given = [k for k, v in vars(args).items() if k in defaults and k not in EXTEND_OPTIONS and v != defaults[k]]
    if given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise InputError(f"{flags}: --extend fits only the new models' columns on the frozen encoder and head of "
                         f"{args.extend}, so these options do not apply; drop them, or train a new checkpoint "
                         "without --extend")


def check_options(args) -> None:
    """Refuse unusable numbers before reading data or loading an encoder (they used to fail deep inside
    the search, after minutes of work, or were silently accepted: --cv-folds -2, --members 0)."""
    from router.errors import InputError

    def need(flag, value, ok, what):
        if not ok:
            raise InputError(f"{flag} {value!r}: expected {what}")

    need("--cv-folds", args.cv_folds, args.cv_folds >= 2, "an integer >= 2 (folds of the head search)")
    for flag in ("members", "epochs", "patience", "pca_dim"):
        v = getattr(args, flag)
        need(f"--{flag.replace('_', '-')}", v, v >= 1, "an integer >= 1")
    need("--lr", args.lr, args.lr > 0 and args.lr == args.lr, "a number > 0")
    need("--weight-decay", args.weight_decay, args.weight_decay >= 0, "a number >= 0")
    need("--dropout", args.dropout, 0 <= args.dropout < 1, "a number in [0, 1)")
    need("--finetune-layers", args.finetune_layers, args.finetune_layers >= 0, "an integer >= 0")
    for flag, text in (("--layers", args.layers), ("--hidden", args.hidden)):
        parts = comma_list(text)
        try:
            values = [int(x) for x in parts]
        except ValueError:
            values = None
        if flag == "--layers":
            need(flag, text, bool(values), "comma-separated hidden-state indices, e.g. -1 or 4,6")
        else:
            need(flag, text, values is not None and all(v >= 1 for v in values),
                 "comma-separated hidden widths >= 1, e.g. 256 or 256,128")


def run(args) -> int:
    from router.files import check_output_dir
    from router.training.data import read_labels
    from router.training.train import train

    check_options(args)
    if args.extend:
        check_extend_options(args)
    check_output_dir(args.out)
    table = read_labels(args.data)
    if args.models:
        table = table.select_models(comma_list(args.models))
    if args.extend:
        from router.training.extend import extend

        ckpt = extend(args.extend, table, args.out, features_cache=args.features_cache, seed=args.seed)
        e = ckpt.meta["training"]["extensions"][-1]
        from pathlib import Path

        same = Path(args.out).resolve() == Path(args.extend).resolve()
        print(f"added {', '.join(e['slots'])} to the head of {args.extend} ({e['n_labels']} labels); "
              f"checkpoint written to {args.out}" + ("" if same else f" ({args.extend} is unchanged)"))
        return 0
    ckpt = train(table, args.out, config_from_args(args))
    v = ckpt.meta["metrics"]["validation"]
    t = ckpt.meta["training"]
    print(f"trained on {t['n_train']} questions, {len(ckpt.slots)} slots; head {t['search']['winner']}")
    print(f"cross-validated: mean AUROC {v['mean_auroc']}, mean Brier {v['mean_brier']}")
    print(f"checkpoint written to {args.out}")
    return 0
