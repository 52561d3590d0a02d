"""Convert RouterBench-style wide CSVs into the long label format.

    python -m router import-routerbench ../shared/data/routerbench --out assets/data/routerbench.jsonl.gz

Each question gets one row per model with correct, cost_usd, output_tokens (~chars/4 of the
model's response), task and split (from the file name: *_train.csv / *_test.csv).
"""

from __future__ import annotations


def configure(p):
    p.add_argument("source", help="a wide CSV or a folder of them")
    p.add_argument("--out", required=True, help="output .jsonl/.csv (optionally .gz)")


def run(args) -> int:
    from router.errors import InputError
    from router.files import check_output_file
    from router.training.data import DATA_SUFFIXES, import_routerbench, write_labels

    check_output_file(args.out, "--out", {"source": args.source})
    if not args.out.endswith(DATA_SUFFIXES):
        raise InputError(f"--out {args.out}: expected a file name ending in {', '.join(DATA_SUFFIXES)}")
    n = write_labels(import_routerbench(args.source), args.out)
    print(f"wrote {n} rows to {args.out}")
    return 0
