"""Where a decision came from: the fields that make an audit line reproducible.

    checkpoint_fingerprint  sha256 of router.json + weights as loaded (Checkpoint.fingerprint)
    pool_hash               sha256 of the pool config as parsed (canonical JSON of every field that
                            routing reads; the file's comments, key order and path do not count)
    router_version          router.__version__
    encoder                 the checkpoint's encoder spec (source, layers, pooling, max tokens, ...)

`provenance(router)` is called where a record is built (the proxy's audit line, the playground's
download); `python -m router audit replay` reads these fields back to tell which lines the
checkpoint under test should reproduce exactly.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

FIELDS = ("checkpoint_fingerprint", "pool_hash", "router_version", "encoder")
# Bookkeeping fields of a Pool that do not change a decision: where the YAML lives.
_POOL_IGNORED = {"source_path", "checkpoint_path", "description"}


def pool_hash(pool) -> str:
    data = pool.model_dump(mode="json", exclude=_POOL_IGNORED)
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def provenance(router) -> dict[str, Any]:
    """The four fields for a PrefillRouter. Cached on the router: it is read-only once built, and
    hashing the weights per request would cost more than routing."""
    cached = router.__dict__.get("_provenance")
    if cached is None:
        from router import __version__

        ckpt = router.checkpoint
        cached = {"checkpoint_fingerprint": ckpt.fingerprint, "pool_hash": pool_hash(router.pool),
                  "router_version": __version__, "encoder": ckpt.encoder_spec.to_json()}
        router.__dict__["_provenance"] = cached
    return dict(cached)
