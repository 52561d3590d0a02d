"""Head families for checkpoint format 2, at inference: plain numpy, no sklearn, no pickle.

Every head maps features [n, d] to P(correct) [n, slots] and describes itself as a JSON spec
(kind + small settings, stored in router.json "head") plus named float32 tensors (stored in
weights.safetensors under a prefix). Composite heads (average, calibrated, extended) nest the
specs of their parts and prefix their tensors, so one loader reads any tree:

- "mlp": the format-1 head (standardize -> PCA -> MLP ensemble), see head.Head.
- "logistic": standardize -> W [d, m] + b, one logistic regression per slot.
- "knn": cosine k nearest training questions (their unit features and labels are stored); the mean
  (or similarity-weighted mean) of their known labels, shrunk toward the slot's prior.
- "irt": standardize -> PCA -> z; difficulty b(z) = z.w_b + c_b; discrimination a(z) = z.W_a + c_a
  [D]; each slot has an ability theta_m [D] and an offset beta_m; P = sigmoid(a(z).theta_m + beta_m - b(z)).
- "average": the mean of its members' P.
- "calibrated": a base head followed by one monotone map per slot (none, Platt or isotonic).
- "extended": a base head plus extra slots fitted later (`train --extend`), each a "column".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from router.errors import CheckpointError


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def _check_dim(X: np.ndarray, d: int) -> np.ndarray:
    X = np.atleast_2d(np.asarray(X, dtype=np.float32))
    if X.shape[1] != d:
        raise CheckpointError(f"feature size {X.shape[1]} does not match the head's input size {d}: "
                              "the checkpoint was trained with another encoder spec")
    return X


class LogisticHead:
    kind = "logistic"

    def __init__(self, mean, scale, W, b):
        self.mean, self.scale, self.W, self.b = _f32(mean), _f32(scale), _f32(W), _f32(b)

    in_dim = property(lambda self: int(self.mean.shape[0]))
    n_slots = property(lambda self: int(self.W.shape[1]))

    def standardize(self, X):
        return (_check_dim(X, self.in_dim) - self.mean) / self.scale

    def predict(self, X):
        return sigmoid(self.standardize(X) @ self.W + self.b)

    def spec(self):
        return {"kind": self.kind}

    def tensors(self):
        return {"mean": self.mean, "scale": self.scale, "W": self.W, "b": self.b}

    @classmethod
    def load(cls, spec, t):
        return cls(t["mean"], t["scale"], t["W"], t["b"])


def unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    return X / np.clip(np.linalg.norm(X, axis=1, keepdims=True), 1e-12, None)


class KNNHead:
    kind = "knn"

    def __init__(self, X, Y, k: int, weighting: str = "uniform", shrink: float = 0.0, prior=None):
        X = np.asarray(X, dtype=np.float32)
        norms = np.linalg.norm(X, axis=1)
        # unit rows of the training questions' features; rows loaded from a checkpoint already are, and
        # normalizing them again would move them by rounding (and the checkpoint's fingerprint with them)
        self.X = _f32(X if len(X) and np.allclose(norms, 1.0, atol=1e-6) else unit(X))
        Y = np.asarray(Y, dtype=np.float32)
        self.known = _f32(~np.isnan(Y))
        self.Y = _f32(np.nan_to_num(Y, nan=0.0))
        self._YK = self.Y * self.known  # labels where known, once: vote gathers it per query
        self.k, self.weighting, self.shrink = int(k), str(weighting), float(shrink)
        if prior is None:
            prior = self.Y.sum(0) / np.maximum(self.known.sum(0), 1)
        self.prior = _f32(prior)

    in_dim = property(lambda self: int(self.X.shape[1]))
    n_slots = property(lambda self: int(self.Y.shape[1]))

    def predict(self, X):
        return self.vote(self.similarities(X))

    def similarities(self, X) -> np.ndarray:
        """Cosine similarity [n, stored rows] of each query to the stored questions."""
        Q = unit(_check_dim(X, self.in_dim))
        # One matrix-vector product per query, never one matrix product for the batch: BLAS rounds the
        # two differently (~1e-7), enough to swap the k-th and (k+1)-th neighbour at a near-tie and move
        # P by 0.006. Row by row, a question gets the same P alone, in a proxy micro-batch or in a replay.
        return np.stack([self.X @ q for q in Q]) if len(Q) else np.zeros((0, len(self.X)), np.float32)

    def vote(self, S: np.ndarray, k: int | None = None, weighting: str | None = None) -> np.ndarray:
        """P from similarities S: the k nearest stored questions' labels (this head's k and weighting
        unless given, so a search can score many settings on one similarity matrix)."""
        k = max(1, min(self.k if k is None else int(k), self.X.shape[0]))
        weighting = self.weighting if weighting is None else weighting
        nn = np.argpartition(-S, k - 1, axis=1)[:, :k]
        s = np.take_along_axis(S, nn, axis=1)  # [n, k]
        if weighting == "similarity":
            # softmax over cosine similarity: closer neighbours count more (temperature 0.05)
            w = np.exp((s - s.max(axis=1, keepdims=True)) / 0.05)
        else:
            w = np.ones_like(s)
        num = np.einsum("nk,nkm->nm", w, self._YK[nn])  # [n, k, m] gathered
        den = np.einsum("nk,nkm->nm", w, self.known[nn])
        # shrink = pseudo-count (in units of one neighbour's weight) pulling toward the slot prior
        a = self.shrink * w.mean(axis=1, keepdims=True)
        return (num + a * self.prior) / np.maximum(den + a, 1e-12) * (den + a > 0) + self.prior * (den + a <= 0)

    def spec(self):
        return {"kind": self.kind, "k": self.k, "weighting": self.weighting, "shrink": self.shrink}

    def tensors(self):
        return {"X": self.X, "Y": self.Y, "known": self.known, "prior": self.prior}

    @classmethod
    def load(cls, spec, t):
        Y = np.where(t["known"] > 0.5, t["Y"], np.nan)
        return cls(t["X"], Y, spec["k"], spec.get("weighting", "uniform"), spec.get("shrink", 0.0), t["prior"])


class IRTHead:
    kind = "irt"

    def __init__(self, mean, scale, proj, Wa, ca, wb, cb, theta, beta):
        self.mean, self.scale, self.proj = _f32(mean), _f32(scale), _f32(proj)
        self.Wa, self.ca, self.wb, self.cb = _f32(Wa), _f32(ca), _f32(wb), _f32(cb)
        self.theta, self.beta = _f32(theta), _f32(beta)  # [m, D], [m]

    in_dim = property(lambda self: int(self.mean.shape[0]))
    n_slots = property(lambda self: int(self.theta.shape[0]))

    def query_params(self, X) -> tuple[np.ndarray, np.ndarray]:
        """(discrimination a [n, D], difficulty b [n]) of each query: what a new slot is fitted on."""
        z = ((_check_dim(X, self.in_dim) - self.mean) / self.scale) @ self.proj
        return z @ self.Wa + self.ca, z @ self.wb + self.cb

    def predict(self, X):
        a, b = self.query_params(X)
        return sigmoid(a @ self.theta.T + self.beta - b[:, None])

    def spec(self):
        return {"kind": self.kind, "dim": int(self.theta.shape[1]), "pca_dim": int(self.proj.shape[1])}

    def tensors(self):
        return {k: getattr(self, k) for k in ("mean", "scale", "proj", "Wa", "ca", "wb", "cb", "theta", "beta")}

    @classmethod
    def load(cls, spec, t):
        return cls(*(t[k] for k in ("mean", "scale", "proj", "Wa", "ca", "wb", "cb", "theta", "beta")))


class MLPHead:
    """Format-1 head (standardize -> PCA -> ensemble) as a member of a format-2 tree."""

    kind = "mlp"

    def __init__(self, head):
        self.head = head

    in_dim = property(lambda self: self.head.in_dim)
    n_slots = property(lambda self: self.head.n_slots)

    def predict(self, X):
        return self.head.predict(X)

    def spec(self):
        return {"kind": self.kind, "members": self.head.members, "layers": len(self.head.layers),
                "pca_dim": int(self.head.pca.shape[1])}

    def tensors(self):
        return self.head.tensors()

    @classmethod
    def load(cls, spec, t):
        from router.model.head import Head

        return cls(Head.from_tensors(t, "mlp head"))


class AverageHead:
    kind = "average"

    def __init__(self, members: list):
        self.members = list(members)

    in_dim = property(lambda self: self.members[0].in_dim)
    n_slots = property(lambda self: self.members[0].n_slots)

    def predict(self, X):
        return np.mean([m.predict(X) for m in self.members], axis=0)

    def spec(self):
        return {"kind": self.kind, "members": [m.spec() for m in self.members]}

    def tensors(self):
        return {f"{i}.{k}": v for i, m in enumerate(self.members) for k, v in m.tensors().items()}

    @classmethod
    def load(cls, spec, t):
        return cls([load_head(s, _sub(t, f"{i}.")) for i, s in enumerate(spec["members"])])


def apply_calibration(p: np.ndarray, method: str, params: np.ndarray) -> np.ndarray:
    """One slot's monotone map: none; platt (params [a, b]: sigmoid(a*logit(p)+b)); isotonic
    (params [2, K]: knots x then y, linear in between, flat outside)."""
    if method == "none":
        return p
    if method == "platt":
        return sigmoid(params[0] * logit(p) + params[1])
    if method == "isotonic":
        return np.interp(p, params[0], params[1])
    raise CheckpointError(f"unknown calibration method {method!r} (expected none, platt or isotonic)")


class CalibratedHead:
    kind = "calibrated"

    def __init__(self, base, methods: list[str], params: list[np.ndarray]):
        self.base, self.methods, self.params = base, list(methods), [_f32(p) for p in params]
        if len(self.methods) != base.n_slots:
            raise CheckpointError(f"calibration lists {len(self.methods)} slots but the head scores {base.n_slots}")
        self._mapped = [j for j, m in enumerate(self.methods) if m != "none"]

    in_dim = property(lambda self: self.base.in_dim)
    n_slots = property(lambda self: self.base.n_slots)

    def predict(self, X, calibrated: bool = True):
        P = self.base.predict(X)
        if not calibrated or not self._mapped:
            return P
        # Only the mapped slots are touched: on the routing path a per-slot loop over identity maps
        # cost more than the kNN vote itself. Same values and dtype as stacking every slot's map.
        cols = {j: apply_calibration(P[:, j], self.methods[j], self.params[j]) for j in self._mapped}
        out = P.astype(np.result_type(P, *cols.values()), copy=True)
        for j, c in cols.items():
            out[:, j] = c
        return out

    def predict_raw(self, X):
        return self.predict(X, calibrated=False)

    def spec(self):
        return {"kind": self.kind, "base": self.base.spec(), "methods": self.methods}

    def tensors(self):
        t = {f"base.{k}": v for k, v in self.base.tensors().items()}
        t.update({f"cal.{j}": p for j, p in enumerate(self.params)})
        return t

    @classmethod
    def load(cls, spec, t):
        methods = spec["methods"]
        return cls(load_head(spec["base"], _sub(t, "base.")), methods, [t[f"cal.{j}"] for j in range(len(methods))])


class ColumnHead:
    """One slot added by `train --extend`: a logistic regression on query features the frozen head
    already computes. on = "slots": logit of the base slots' P; "irt": the IRT head's discrimination
    a(z) and difficulty b(z); "features": the encoder features themselves; "slots+features": both side
    by side (a P that follows the other slots' yet can still move apart from them where the features
    say so; "slots" alone can only restate the others' order, so routing between them learns nothing)."""

    kind = "column"
    SOURCES = ("slots", "irt", "features", "slots+features")

    def __init__(self, on: str, mean, scale, w, c):
        if on not in self.SOURCES:
            raise CheckpointError(f"column head reads {on!r}; expected one of {self.SOURCES}")
        self.on = on
        self.mean, self.scale, self.w, self.c = _f32(mean), _f32(scale), _f32(w), _f32(c)

    @staticmethod
    def inputs(on: str, X: np.ndarray, base) -> np.ndarray:
        if on == "slots":
            return logit(base.predict(X))
        if on == "irt":
            irt = find_irt(base)
            if irt is None:
                raise CheckpointError("column reads the IRT head's query parameters but the head has no IRT part")
            a, b = irt.query_params(X)
            return np.concatenate([a, b[:, None]], axis=1)
        if on == "slots+features":
            return np.concatenate([logit(base.predict(X)), np.asarray(X, dtype=np.float32)], axis=1)
        return np.asarray(X, dtype=np.float32)

    def predict(self, X, base) -> np.ndarray:
        Z = (self.inputs(self.on, X, base) - self.mean) / self.scale
        return sigmoid(Z @ self.w + self.c[0])

    def spec(self):
        return {"kind": self.kind, "on": self.on}

    def tensors(self):
        return {"mean": self.mean, "scale": self.scale, "w": self.w, "c": self.c}

    @classmethod
    def load(cls, spec, t):
        return cls(spec["on"], t["mean"], t["scale"], t["w"], t["c"])


class ExtendedHead:
    kind = "extended"

    def __init__(self, base, columns: list[ColumnHead]):
        self.base, self.columns = base, list(columns)

    in_dim = property(lambda self: self.base.in_dim)
    n_slots = property(lambda self: self.base.n_slots + len(self.columns))

    def predict(self, X):
        X = _check_dim(X, self.in_dim)
        cols = [c.predict(X, self.base)[:, None] for c in self.columns]
        return np.concatenate([self.base.predict(X), *cols], axis=1)

    def spec(self):
        return {"kind": self.kind, "base": self.base.spec(), "columns": [c.spec() for c in self.columns]}

    def tensors(self):
        t = {f"base.{k}": v for k, v in self.base.tensors().items()}
        for i, c in enumerate(self.columns):
            t.update({f"col.{i}.{k}": v for k, v in c.tensors().items()})
        return t

    @classmethod
    def load(cls, spec, t):
        cols = [ColumnHead.load(s, _sub(t, f"col.{i}.")) for i, s in enumerate(spec["columns"])]
        return cls(load_head(spec["base"], _sub(t, "base.")), cols)


def find_irt(head) -> IRTHead | None:
    """The IRT head inside a tree (the first one found), or None."""
    if isinstance(head, IRTHead):
        return head
    members = getattr(head, "members", None)
    for child in [getattr(head, "base", None), *(members if isinstance(members, list) else [])]:
        if child is not None:
            found = find_irt(child)
            if found is not None:
                return found
    return None


KINDS = {c.kind: c for c in (LogisticHead, KNNHead, IRTHead, MLPHead, AverageHead, CalibratedHead, ExtendedHead)}


def _sub(t: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix):]: v for k, v in t.items() if k.startswith(prefix)}


def load_head(spec: dict[str, Any], tensors: dict[str, np.ndarray]):
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind not in KINDS:
        raise CheckpointError(f"head kind {kind!r} is not known (this router reads {sorted(KINDS)})")
    try:
        return KINDS[kind].load(spec, tensors)
    except KeyError as exc:
        raise CheckpointError(f"{kind} head: missing tensor or field {exc.args[0]!r}") from None
