"""Read a /metrics answer (Prometheus text format) into {(sample, labels): value}."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str, **kw) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a /metrics answer."""
    resp = httpx.get(f"{url}/metrics", timeout=10, **kw)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    out = {}
    for fam in text_string_to_metric_families(resp.text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(samples, name: str, **labels) -> float:
    return sum(v for (n, lab), v in samples.items() if n == name and all(dict(lab).get(k) == str(x)
                                                                         for k, x in labels.items()))
