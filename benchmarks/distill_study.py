"""A shallower e5 distilled from the bundled one (issue 16 (c)): does it keep the routing quality?

    python -m benchmarks.distill_study [--layers 4] [--texts 6000] [--epochs 2] [--quantize int8]
        [--out runs/distill] [--results docs/fastpath_quality.json]

1. Distil (router/training/distill.py): the student is e5's embeddings + L of its 12 blocks, trained
   to reproduce e5's features (cosine loss) on unlabeled text: every RouterBench training question and
   a random sample of RouteLLM's (no test question, no label is read). The teacher's features come
   from the feature cache `train` fills.
2. Score it as every fast-path option is scored (benchmarks/fastpath_quality.py run_one): `train`
   with its defaults and only the encoder spec changed, on each set's training split; `evaluate` on
   the test split; the 20 EN/JA pairs. Rows are merged into --results as option e5-student-L<L>.

Speed: `python -m benchmarks.bench_fastpath --checkpoint e5-onnx=assets/checkpoint
--checkpoint student=runs/distill/e5-student-L4-rb` (the student's checkpoint carries its blocks).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks import fastpath_quality as fq
from router.paths import PROJECT_ROOT as ROOT


def distil_texts(n: int, seed: int = 0) -> list[str]:
    from router.training.data import read_labels
    from router.training.train import training_rows

    a, b = (list(dict.fromkeys(training_rows(read_labels(fq.SETS[k])).questions)) for k in ("rb", "rl"))
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(b), size=max(0, min(len(b), n - len(a))), replace=False)
    return a + [b[i] for i in sorted(pick)]


def main() -> None:
    from router.commands.train import spec_from_file
    from router.model.encoder import EncoderSpec
    from router.model.features import cached_features
    from router.training.distill import DistillConfig, distill, save_student

    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--texts", type=int, default=6000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--quantize", choices=["int8"], default=None,
                    help="score the student's int8 export (dynamic quantization; trained on its own features)")
    ap.add_argument("--sets", default="rb,rl")
    ap.add_argument("--out", default=str(ROOT / "runs" / "distill"))
    ap.add_argument("--results", default=str(ROOT / "docs" / "fastpath_quality.json"))
    a = ap.parse_args()
    out = Path(a.out)
    teacher = EncoderSpec(**fq.OPTIONS["e5-onnx"])
    folder = out / f"e5-L{a.layers}"
    if (folder / "student.json").exists():
        spec = spec_from_file(str(folder / "student.json"))
        print(f"reusing the student in {folder}", flush=True)
    else:
        texts = distil_texts(a.texts)
        targets = cached_features(teacher, texts, progress=True)
        r = distill(teacher, texts, targets, DistillConfig(layers=a.layers, epochs=a.epochs))
        spec = save_student(teacher, r, folder)
        print(f"distilled {len(texts)} texts in {r['seconds']:.0f} s; best epoch {r['best_epoch']}: "
              f"validation 1 - cos {r['log'][r['best_epoch']]['val_loss']:.4f} "
              f"(the teacher's blocks {r['init_blocks']} before training: {r['log'][0]['val_loss']:.4f})", flush=True)
    option = f"e5-student-L{a.layers}" + ("-int8" if a.quantize else "")
    if a.quantize:
        from dataclasses import replace

        spec = replace(spec, quantize=a.quantize)
    res_path = Path(a.results)
    rec = json.loads((folder / "student.json").read_text())
    for set_name in a.sets.split(","):
        row = fq.run_one(option, set_name, out, spec=spec)
        row["distillation"] = {k: rec.get(k) for k in ("init_blocks", "n_texts", "epochs", "best_epoch", "seconds")}
        fq.merge_row(res_path, row)


if __name__ == "__main__":
    main()
