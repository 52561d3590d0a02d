"""Encoder and head study on the RouterBench slice (train -> test split), plus cross-lingual checks.

    python -m benchmarks.study_encoders features --encoders minilm,e5          # embed once, cached
    python -m benchmarks.study_encoders features --encoders smollm2,gemma --subsample 700
    python -m benchmarks.study_encoders heads --out docs/study_results.json    # fit + score every row
    python -m benchmarks.study_encoders latency && python -m benchmarks.study_encoders crosslingual
    python -m benchmarks.study_encoders page                                   # tables -> docs/encoder_study.md

Each encoder is run ONCE with several layers read in the same pass (and, for decoders, both
last-token and mean pooling); the cached matrix is then sliced per layer. Heads (MLP ensemble
at several PCA sizes, logistic regression, kNN-40, MLP+LR average) are fit on the training
rows and scored on the test rows with router.metrics, the same code `evaluate` uses.
Decoders are slow on CPU: they run on a stratified subsample, and every encoder is also
scored on that same subsample so that their rows compare like with like.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from router.model.encoder import EncoderSpec, cache_dir, get_encoder
from router.paths import PROJECT_ROOT
from router.training import baselines, metrics
from router.training.data import read_labels

ROOT = PROJECT_ROOT

DATA = ROOT / "assets" / "data" / "routerbench.jsonl.gz"
PAIRS = ROOT / "assets" / "multilingual_pairs.jsonl"

# name -> (spec read in one pass, hidden size, {slice name: layer blocks}); decoders add poolings.
ENCODERS = {
    "minilm": (EncoderSpec(layers=(1, 2, 3, 4, 5, 6)), 384,
               {"L6": [5], "L3": [2], "L4": [3], "L3+L6": [2, 5], "L2+L4+L6": [1, 3, 5]}),
    "minilm128": (EncoderSpec(layers=(3, 6), max_tokens=128), 384, {"L6": [1], "L3": [0], "L3+L6": [0, 1]}),
    "e5": (EncoderSpec(source="multilingual-e5-small", layers=(6, 9, 12), prefix="query: "), 384,
           {"L12": [2], "L6": [0], "L9": [1], "L9+L12": [1, 2]}),
    "smollm2": (EncoderSpec(source="SmolLM2-135M-Instruct", kind="decoder", layers=(8, 16), max_tokens=128), 576,
                {"L8": [0], "L16": [1], "L8+L16": [0, 1]}),
    "gemma": (EncoderSpec(source="gemma-3-270m", kind="decoder", layers=(6, 12), max_tokens=128), 640,
              {"L6": [0], "L12": [1], "L6+L12": [0, 1]}),
}
# What a checkpoint would store for each encoder (one layer, one pooling): used for latency.
DEPLOY = {
    "minilm": EncoderSpec(layers=(-1,)),
    "minilm128": EncoderSpec(layers=(-1,), max_tokens=128),
    "e5": EncoderSpec(source="multilingual-e5-small", layers=(-1,), prefix="query: "),
    "smollm2": EncoderSpec(source="SmolLM2-135M-Instruct", kind="decoder", layers=(16,), pooling="last",
                           max_tokens=128),
    "gemma": EncoderSpec(source="gemma-3-270m", kind="decoder", layers=(12,), pooling="last", max_tokens=128),
    # The comparison point of benchmarks/bench_route.py: the whole decoder read at prefill.
    "smollm2-full": EncoderSpec(source="SmolLM2-135M-Instruct", kind="decoder", layers=(-1,), pooling="last"),
}


def load_table():
    t = read_labels(DATA)
    test = np.array([s == "test" for s in t.splits])
    test_texts = {q.strip() for q, s in zip(t.questions, test) if s}
    train = np.array([(not s) and q.strip() not in test_texts for q, s in zip(t.questions, test)])
    return t, np.flatnonzero(train), np.flatnonzero(test)


def subsample(t, train_idx, test_idx, n: int, seed: int = 0):
    """Stratified by task, same share from train and test (n rows in all)."""
    rng = np.random.default_rng(seed)
    frac = n / (len(train_idx) + len(test_idx))
    out = []
    for idx in (train_idx, test_idx):
        keep = []
        for task in sorted(set(t.tasks)):
            rows = [i for i in idx if t.tasks[i] == task]
            keep += list(rng.choice(rows, max(1, round(len(rows) * frac)), replace=False))
        out.append(np.array(sorted(keep)))
    return out


def feature_path(name: str, n_rows: int, tag: str = "") -> Path:
    return cache_dir() / "study" / f"{name}-{n_rows}{tag}.npz"


def decoder_features(spec: EncoderSpec, texts: list[str], batch_size: int = 16) -> dict[str, np.ndarray]:
    """One forward pass per batch, pooled both ways (last token and mean) for every layer of spec."""
    import torch
    from tqdm.auto import tqdm

    enc = get_encoder(spec)
    ids, _ = enc.tokenize(texts)
    order = np.argsort([len(x) for x in ids], kind="stable")
    out = {p: np.zeros((len(texts), enc.dim), np.float32) for p in ("last", "mean")}
    for s in tqdm(range(0, len(order), batch_size), desc=f"decoder {spec.source}", unit="batch"):
        b = order[s: s + batch_size]
        rows = [ids[i] for i in b]
        width = max(map(len, rows))
        x = torch.full((len(rows), width), enc.tokenizer.pad_token_id, dtype=torch.long)
        m = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            x[r, : len(row)] = torch.tensor(row)
            m[r, : len(row)] = 1
        with torch.inference_mode():
            hs = enc.model(input_ids=x, attention_mask=m, output_hidden_states=True).hidden_states
        last = torch.tensor([len(r) - 1 for r in rows])
        mf = m.unsqueeze(-1).float()
        out["last"][b] = torch.cat([hs[j][torch.arange(len(rows)), last].float() for j in enc._layer_idx], -1).numpy()
        out["mean"][b] = torch.cat([((hs[j].float() * mf).sum(1) / mf.sum(1)) for j in enc._layer_idx], -1).numpy()
    return out


def cmd_features(args):
    from router.model.features import cached_features

    t, tr, te = load_table()
    rows = np.arange(len(t))
    if args.subsample:
        a, b = subsample(t, tr, te, args.subsample)
        rows = np.concatenate([a, b])
    texts = [t.questions[i] for i in rows]
    for name in args.encoders.split(","):
        spec = ENCODERS[name][0]
        path = feature_path(name, len(rows))
        if path.exists():
            print(f"{name}: cached at {path}")
            continue
        t0 = time.time()
        if spec.kind == "decoder":
            feats = decoder_features(spec, texts)
        else:
            feats = {"mean": cached_features(spec, texts, progress=True)}
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, rows=rows, seconds=time.time() - t0, **feats)
        print(f"{name}: {len(rows)} rows in {time.time() - t0:.0f} s -> {path}", flush=True)


def load_slices(name: str, rows_wanted: np.ndarray | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{variant: (rows, X)} for every cached matrix of this encoder."""
    spec, hidden, slices = ENCODERS[name]
    out = {}
    for path in sorted((cache_dir() / "study").glob(f"{name}-*.npz")):
        z = np.load(path)
        for pool in ("mean", "last"):
            if pool not in z:
                continue
            for sname, blocks in slices.items():
                cols = np.concatenate([np.arange(k * hidden, (k + 1) * hidden) for k in blocks])
                key = f"{name} {sname}" + (f" {pool}" if spec.kind == "decoder" else "")
                out.setdefault(key, (z["rows"], z[pool][:, cols]))
    return out


def read_pairs() -> list[dict]:
    return [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines() if line.strip()]


def crosslingual(P_en: np.ndarray, P_ja: np.ndarray, price: np.ndarray, tolerance: float = 0.10) -> dict:
    """Mean |P_en - P_ja| over pairs and slots, and the share of pairs routed to the same model."""
    same = metrics.choose(P_en, price, tolerance) == metrics.choose(P_ja, price, tolerance)
    return {"mean_abs_dp": float(np.abs(P_en - P_ja).mean()), "agreement": float(same.mean())}


def pair_features(name: str, variant_cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = read_pairs()
    enc = get_encoder(ENCODERS[name][0])
    X = enc.features([p["en"] for p in pairs] + [p["ja"] for p in pairs])[:, variant_cols]
    return X[: len(pairs)], X[len(pairs):]


def score(P, Y, cost, price) -> dict:
    s = metrics.summarize(P, Y, cost, price)
    cal = metrics.calibration(P, Y, [str(j) for j in range(Y.shape[1])])
    return {"aiq": s["aiq"], "save_parity": s["cost_save_at_parity"], "save_95": s["cost_save_at_95"],
            "max_acc": s["max_accuracy"], "mean_auroc": cal["mean_auroc"], "mean_brier": cal["mean_brier"]}


REG = dict(pca_dim=64, hidden=(128,), dropout=0.5, lr=3e-4, weight_decay=0.1)


def fit_mlp(Xtr, Ytr, pca_dim: int = 128, **kw):
    from router.training.train import TrainConfig, train_head

    head, _ = train_head(Xtr, Ytr, TrainConfig(pca_dim=pca_dim, **kw), progress=False)
    return head


def cmd_heads(args):
    import torch

    torch.set_num_threads(1)  # tiny matmuls: one thread is faster than two fighting other jobs
    t, tr_all, te_all = load_table()
    price = np.nanmean(t.cost[tr_all], axis=0)
    results = json.loads(Path(args.out).read_text()) if Path(args.out).exists() and args.resume else []
    done = {(r["encoder"], r["head"], r["rows"]) for r in results}
    feats = {}
    for name in args.encoders.split(","):
        feats.update(load_slices(name))
    if args.combos:  # e.g. "minilm L6|e5 L12": concatenated features of two encoders
        for combo in args.combos.split(","):
            a, b = combo.split("|")
            (ra, Xa), (rb, Xb) = feats[a], feats[b]
            assert np.array_equal(ra, rb)
            feats[combo.replace("|", " + ")] = (ra, np.concatenate([Xa, Xb], axis=1))
    sets = list(feats.items())
    if args.same_rows_as:  # score full-data features on a decoder's subsample too: like for like
        sub = np.load(feature_path(*args.same_rows_as.split(":")))["rows"]
        sets += [(k, (sub, X[sub])) for k, (rows, X) in feats.items() if len(rows) == len(t)]
    heads = args.heads.split(",")
    for key, (rows, X) in sets:
        if args.only and not any(o in key for o in args.only.split(",")):
            continue
        row_set = "all" if len(rows) == len(t) else f"sub{len(rows)}"
        if args.same_rows_as and row_set == "all":
            continue
        tr = np.flatnonzero(np.isin(rows, tr_all))
        te = np.flatnonzero(np.isin(rows, te_all))
        Ytr, Yte = t.Y[rows[tr]], t.Y[rows[te]]
        cost_te = t.cost[rows[te]]
        Ps = {}
        for h in heads:
            if (key, h, row_set) in done:
                continue
            t0 = time.time()
            if h == "mlp-reg":  # smaller, more regularized: the overfit default stops after a few epochs
                Ps[h] = fit_mlp(X[tr], Ytr, **REG).predict(X[te])
            elif h.startswith("mlp") and "+" not in h:
                pca = int(h.split("pca")[1]) if "pca" in h else 128
                Ps[h] = fit_mlp(X[tr], Ytr, pca).predict(X[te])
            elif h == "lr":
                Ps[h] = baselines.logistic(X[tr], Ytr, X[te])
            elif h == "knn-40":
                Ps[h] = baselines.knn(X[tr], Ytr, X[te], 40)
            elif h == "mlp+lr" and "mlp-reg" in Ps and "lr" in Ps:
                Ps[h] = (Ps["mlp-reg"] + Ps["lr"]) / 2
            else:
                continue
            r = {"encoder": key, "head": h, "rows": row_set, "n_train": len(tr), "n_test": len(te),
                 **score(Ps[h], Yte, cost_te, price), "fit_s": round(time.time() - t0, 1)}
            results.append(r)
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}), flush=True)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(results, indent=1))
    # Same rows for every encoder: re-score full-data encoders on the decoders' subsample.
    return results


def cmd_latency(args):
    """Route-time cost of each deployable encoder: load, memory, one 30-token query."""
    import torch

    q = "In one short paragraph, explain the main difference between a list and a tuple in Python code."
    out = {}
    for name in args.encoders.split(","):
        spec = DEPLOY[name]
        t0 = time.time()
        enc = get_encoder(spec)
        load = time.time() - t0
        n_tok = enc.count_tokens(q)
        enc.features([q])
        times = []
        for _ in range(args.repeats):
            t1 = time.perf_counter()
            enc.features([q])
            times.append((time.perf_counter() - t1) * 1000)
        mem = sum(p.numel() * p.element_size() for p in enc.model.parameters()) / 2**20
        out[name] = {"load_s": round(load, 1), "query_tokens": n_tok, "encode_ms_median": round(float(np.median(times)), 1),
                     "param_mb": round(mem, 1), "threads": torch.get_num_threads()}
        print(name, out[name], flush=True)
    path = Path(args.out)
    old = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**old, **out}, indent=1))


def cmd_crosslingual(args):
    """Fit the MLP head on each encoder variant, score the 20 EN/JA pairs."""
    t, tr_all, _ = load_table()
    price = np.nanmean(t.cost[tr_all], axis=0)
    out = {}
    if args.checkpoint:  # the shipped thing: its encoder spec, its head
        from router.model.head import load_checkpoint

        ck = load_checkpoint(args.checkpoint)
        pairs = read_pairs()
        enc = get_encoder(ck.encoder_spec)
        P = ck.head.predict(enc.features([p["en"] for p in pairs] + [p["ja"] for p in pairs]))
        key = f"checkpoint {args.checkpoint} ({ck.encoder_spec.source})"
        out[key] = crosslingual(P[: len(pairs)], P[len(pairs):], price)
        out[key]["unk_share_ja"] = float(np.mean([i == enc.tokenizer.unk_token_id for row in
                                                  enc.tokenize([p["ja"] for p in pairs])[0] for i in row]))
        print(key, out[key], flush=True)
    for item in (args.variants.split(",") if args.variants else []):
        parts = [p.strip() for p in item.split("|")]
        Xs, Es, Js = [], [], []
        for part in parts:
            name, sname = part.split(" ")[:2]
            _, hidden, slices = ENCODERS[name]
            cols = np.concatenate([np.arange(k * hidden, (k + 1) * hidden) for k in slices[sname]])
            rows, X = load_slices(name)[part]
            assert len(rows) == len(t)
            en, ja = pair_features(name, cols)
            Xs.append(X), Es.append(en), Js.append(ja)
        X, en, ja = (np.concatenate(a, axis=1) for a in (Xs, Es, Js))
        head = fit_mlp(X[tr_all], t.Y[tr_all], **REG)
        out[" + ".join(parts)] = crosslingual(head.predict(en), head.predict(ja), price)
        print(" + ".join(parts), out[" + ".join(parts)], flush=True)
    path = Path(args.out)
    old = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**old, **out}, indent=1))


def _f(v, pct=False):
    if v is None:
        return "—"
    v = 0.0 if abs(v) < 5e-5 else v
    return f"{v:.1%}" if pct else f"{v:.3f}"


def cmd_page(args):
    """Render the three JSON result files as Markdown tables between markers of the results page."""
    docs = ROOT / "docs"
    res = [r for f in sorted(docs.glob("study_results*.json")) for r in json.loads(f.read_text())]
    lat = json.loads((docs / "study_latency.json").read_text()) if (docs / "study_latency.json").exists() else {}
    xl = json.loads((docs / "study_crosslingual.json").read_text()) if (docs / "study_crosslingual.json").exists() else {}
    lines = ["| encoder (layers, pooling) | head | test rows | AIQ | saved at parity | saved at 95% | mean AUROC | fit s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in sorted(res, key=lambda r: (r["rows"] != "all", -r["aiq"])):
        lines.append(f"| {r['encoder']} | {r['head']} | {r['n_test']}{'' if r['rows'] == 'all' else ' (sub)'} | "
                     f"{_f(r['aiq'])} | {_f(r['save_parity'], True)} | {_f(r['save_95'], True)} | "
                     f"{_f(r['mean_auroc'])} | {r['fit_s']} |")
    lines += ["", "| encoder as deployed | encode ms, one ~20-token query | weights MB (after trimming) | load s |",
              "| --- | --- | --- | --- |"]
    for name, v in lat.items():
        lines.append(f"| {name} ({DEPLOY[name].source}) | {v['encode_ms_median']} | {v['param_mb']} | {v['load_s']} |")
    lines += ["", "| features (MLP head) | mean abs(P_en - P_ja) | same choice at tolerance 0.10 |", "| --- | --- | --- |"]
    for name, v in xl.items():
        lines.append(f"| {name} | {_f(v['mean_abs_dp'])} | {_f(v['agreement'], True)} |")
    page = Path(args.page)
    text = page.read_text(encoding="utf-8")
    start, end = "<!-- study tables: generated -->", "<!-- end of study tables -->"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    page.write_text(head + start + "\n\n" + "\n".join(lines) + "\n\n" + end + tail, encoding="utf-8")
    print(f"wrote {len(res)} rows to {page}")


def cmd_seed(args):
    """Copy a study slice into the features cache under the one-layer spec a checkpoint stores,
    so `train` and `evaluate` reuse it. Only for the last layer, where both compute the same numbers."""
    from router.model.features import features_key
    from router.training.train import training_rows

    t, _, _ = load_table()
    name, sname = args.slice.split(" ")
    spec, hidden, slices = ENCODERS[name]
    (k,) = slices[sname]
    if spec.layers[k] not in (-1, get_encoder(DEPLOY[name]).n_layers):
        raise SystemExit("seed only works for the last layer")
    rows, X = load_slices(name)[args.slice]
    assert len(rows) == len(t)
    by_text = dict(zip(t.questions, X))
    for subset in (training_rows(t).questions, t.split("test").questions, t.questions):
        path = cache_dir() / "features" / f"{features_key(DEPLOY[name], subset)}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.stack([by_text[q] for q in subset]).astype(np.float32), allow_pickle=False)
        print("seeded", path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("features")
    f.add_argument("--encoders", default="minilm,e5")
    f.add_argument("--subsample", type=int, default=0)
    h = sub.add_parser("heads")
    h.add_argument("--encoders", default="minilm,e5")
    h.add_argument("--heads", default="mlp-reg,lr,knn-40,mlp+lr")
    h.add_argument("--combos", default="")
    h.add_argument("--only", default="")
    h.add_argument("--resume", action="store_true")
    h.add_argument("--same-rows-as", default="", help="NAME:ROWS of a subsample file, e.g. smollm2:400")
    h.add_argument("--out", default=str(ROOT / "docs" / "study_results.json"))
    lat = sub.add_parser("latency")
    lat.add_argument("--encoders", default="minilm,e5")
    lat.add_argument("--repeats", type=int, default=20)
    lat.add_argument("--out", default=str(ROOT / "docs" / "study_latency.json"))
    c = sub.add_parser("crosslingual")
    c.add_argument("--variants", default="minilm L6,e5 L12,minilm L6|e5 L12")
    c.add_argument("--checkpoint", default="", help="also score a trained checkpoint (its encoder and head)")
    c.add_argument("--out", default=str(ROOT / "docs" / "study_crosslingual.json"))
    pg = sub.add_parser("page")
    pg.add_argument("--page", default=str(ROOT / "docs" / "encoder_study.md"))
    sd = sub.add_parser("seed")
    sd.add_argument("--slice", default="minilm L6")
    args = p.parse_args(argv)
    {"page": cmd_page, "seed": cmd_seed, "features": cmd_features, "heads": cmd_heads, "latency": cmd_latency, "crosslingual": cmd_crosslingual}[args.cmd](args)


if __name__ == "__main__":
    main()
