"""Per-query output length: how many tokens will this model write for this query?

The mean output length of a model in the training data hides the spread that matters for cost: on
the bundled RouterBench slice a multiple-choice answer is one token while an MBPP answer is ~150,
and the mean (~30) is wrong for both. With `output_length_data:` in the pool YAML (long-format
labeled data with `question`, `model`, `output_tokens`; the training data itself), the router fits,
per label column, a ridge regression of log(1 + output tokens) on hashed word n-grams of the
question (Duan's smearing factor turns the log-scale fit back into a mean), and predicts each
slot's output length per query.

Only slots whose label column is their own get a per-query prediction: a slot that borrows another
model's labels (`trained_as`) would inherit another model's lengths, so it keeps the borrowed mean
and says so (set `expected_output_tokens` or run `audit calibrate-costs`).
Fitting takes ~10-40 s on the bundled data (2,225 questions x 11 models, 2 busy cores) once; the
fit is cached (safetensors + JSON) under $ROUTER_CACHE/output-length, keyed by the data file.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from router.errors import ConfigError

MIN_ROWS = 50  # fewer labeled lengths than this for a column: no model for it
ALPHA = 1.0


class LengthModel:
    def __init__(self, vectorizer, coef: dict[str, np.ndarray], intercept: dict[str, float], smear: dict[str, float]):
        self.vectorizer = vectorizer
        self.coef, self.intercept, self.smear = coef, intercept, smear

    @property
    def labels(self) -> set[str]:
        return set(self.coef)

    def predict(self, texts: Sequence[str], labels: Sequence[str]) -> np.ndarray:
        """[texts, labels] expected output tokens (NaN where a label has no model)."""
        X = self.vectorizer.transform(list(texts))
        out = np.full((len(texts), len(labels)), np.nan)
        for j, lab in enumerate(labels):
            if lab in self.coef:
                z = X @ self.coef[lab] + self.intercept[lab]
                out[:, j] = np.maximum(0.0, np.expm1(np.clip(z, -20, 20)) * self.smear[lab])
        return out


def _rows(path: Path):
    opener = gzip.open if path.name.endswith(".gz") else open
    name = path.name.removesuffix(".gz")
    with opener(path, "rt", encoding="utf-8") as f:
        if name.endswith(".jsonl"):
            for line in f:
                if line.strip():
                    yield json.loads(line)
        elif name.endswith(".csv"):
            yield from csv.DictReader(io.StringIO(f.read()))
        else:
            raise ValueError("expected .jsonl, .jsonl.gz, .csv or .csv.gz")


def fit(path: str | Path) -> LengthModel:
    path = Path(path)
    by_label: dict[str, tuple[list[str], list[float]]] = {}
    try:
        for r in _rows(path):
            if r.get("split") not in (None, "", "train"):
                continue  # only what the checkpoint could have seen
            n = r.get("output_tokens")
            if n in (None, "") or not r.get("question") or not r.get("model"):
                continue
            qs, ys = by_label.setdefault(str(r["model"]), ([], []))
            qs.append(str(r["question"]))
            ys.append(float(n))
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        raise ConfigError(str(path), [f"output_length_data: cannot read it ({exc})"]) from None
    vec = _vectorizer()
    # Every model answered the same questions: hash each question once.
    unique = list(dict.fromkeys(q for qs, _ in by_label.values() for q in qs))
    row_of = {q: i for i, q in enumerate(unique)}
    X_all = vec.transform(unique)
    coef, intercept, smear = {}, {}, {}
    # Ridge in its dual form: far fewer questions than hashed features, so one Gram matrix serves
    # every label column (~0.1 s each instead of a sparse solve per column).
    K = (X_all @ X_all.T).toarray()
    for lab, (qs, ys) in by_label.items():
        if len(qs) < MIN_ROWS:
            continue
        idx = np.array([row_of[q] for q in qs])
        y = np.log1p(np.asarray(ys))
        mu = float(y.mean())
        a = np.linalg.solve(K[np.ix_(idx, idx)] + ALPHA * np.eye(len(idx)), y - mu)
        w = np.asarray(X_all[idx].T @ a).ravel()
        resid = y - (K[np.ix_(idx, idx)] @ a + mu)
        coef[lab] = w
        intercept[lab] = mu
        smear[lab] = float(np.mean(np.exp(resid)))
    if not coef:
        raise ConfigError(str(path), [f"output_length_data: no model has {MIN_ROWS}+ rows with output_tokens"])
    return LengthModel(vec, coef, intercept, smear)


_lock = threading.Lock()


def _vectorizer():
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=2 ** 16, ngram_range=(1, 2), alternate_sign=False, norm="l2")


def _cache_file(path: str, mtime: float, size: int) -> Path:
    import hashlib
    import os

    root = Path(os.environ.get("ROUTER_CACHE") or Path.home() / ".cache" / "prefill-router")
    key = hashlib.sha256(f"{path}|{mtime}|{size}|v1".encode()).hexdigest()[:16]
    return root / "output-length" / f"{key}.safetensors"


@lru_cache(maxsize=4)
def _cached(path: str, mtime: float, size: int) -> LengthModel:
    """Fit once, then reuse the fit from the cache folder (safetensors + JSON metadata, no pickle)."""
    from safetensors.numpy import load_file

    from router.files import save_tensors

    f = _cache_file(path, mtime, size)
    if f.exists():
        try:
            arrays = load_file(str(f))
            meta = json.loads(f.with_suffix(".json").read_text(encoding="utf-8"))
            coef = {lab: arrays[f"c{i}"].astype(float) for i, lab in enumerate(meta["labels"])}
            return LengthModel(_vectorizer(), coef, dict(zip(meta["labels"], meta["intercept"])),
                               dict(zip(meta["labels"], meta["smear"])))
        except (OSError, KeyError, ValueError):
            pass  # a broken cache entry: fit again below
    model = fit(path)
    labels = sorted(model.coef)
    try:
        f.parent.mkdir(parents=True, exist_ok=True)
        save_tensors({f"c{i}": model.coef[lab].astype(np.float32) for i, lab in enumerate(labels)}, str(f) + ".tmp")
        f.with_suffix(".json").write_text(json.dumps({"labels": labels, "source": path,
                                                      "intercept": [model.intercept[x] for x in labels],
                                                      "smear": [model.smear[x] for x in labels]}), encoding="utf-8")
        Path(str(f) + ".tmp").replace(f)
    except OSError:
        pass  # read-only cache: fit per process
    return model


def length_model(path: str | Path) -> LengthModel:
    """One fit per process and file version (pools sharing the data share the model)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(str(p), ["output_length_data: file not found"])
    with _lock:  # two pools loading at once fit once
        st = p.stat()
        return _cached(str(p.resolve()), st.st_mtime, st.st_size)
