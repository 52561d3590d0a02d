"""Evaluate a checkpoint: tolerance sweep, AIQ, cost saved, AUROC/Brier, baselines in the same run.

    python -m router evaluate --checkpoint assets/checkpoint --data assets/data/routerbench.jsonl.gz \
        --json eval.json --plot eval.html

Evaluates the rows with split=test (--split; '' = every row). Baselines (oracle, random, prior,
kNN-40, logistic regression) are fit on the other rows with the same encoder features.
Questions the checkpoint was trained on are refused unless --allow-overlap.
"""

from __future__ import annotations

from router.commands.options import comma_list


def configure(p):
    p.add_argument("--checkpoint", default="assets/checkpoint", help="checkpoint directory (default: the bundled one)")
    p.add_argument("--data", required=True, help="labeled file or folder (long format, CSV/JSONL)")
    p.add_argument("--split", default="test", help="evaluate rows with this split value ('' = all rows)")
    p.add_argument("--allow-overlap", action="store_true",
                   help="evaluate even if some questions were in the checkpoint's training set (optimistic numbers)")
    p.add_argument("--tolerance", type=float, default=0.2, help="default tolerance to mark and report (0..1)")
    p.add_argument("--no-baselines", action="store_true", help="skip the fitted baselines (faster)")
    p.add_argument("--models", default=None,
                   help="comma-separated checkpoint models to route among (default: all the checkpoint scores)")
    p.add_argument("--json", dest="json_out", default=None, help="write the full report here")
    p.add_argument("--record", action="store_true",
                   help="store the summary in the checkpoint's router.json as metrics[SPLIT]")
    p.add_argument("--plot", default=None, help="write an interactive plotly chart (HTML) here")


def run(args) -> int:
    from router.files import check_output_file
    from router.routing.router import check_tolerance
    from router.training.evaluate import evaluate, format_table, write_json, write_plot

    # both outputs checked before any is written: a bad --plot must not leave a fresh --json behind
    for flag, path in (("--json", args.json_out), ("--plot", args.plot)):
        if path:
            check_output_file(path, flag, {"--data": args.data, "--checkpoint": args.checkpoint})
    report = evaluate(args.checkpoint, args.data, split=args.split, allow_overlap=args.allow_overlap,
                      default_tolerance=check_tolerance(args.tolerance), baselines=not args.no_baselines,
                      models=comma_list(args.models) if args.models else None)
    print(format_table(report))
    if args.json_out:
        write_json(report, args.json_out)
        print(f"report written to {args.json_out}")
    if args.record:
        from router.training.evaluate import record_in_checkpoint

        if report["overlap_with_training"]:
            print("not recorded: the evaluated rows overlap the training set")
        elif report["slots"] != report["checkpoint_slots"]:
            print("not recorded: --models evaluates routing among some of the checkpoint's models only")
        else:
            print(f"metrics recorded in {record_in_checkpoint(report, args.checkpoint)}")
    if args.plot:
        write_plot(report, args.plot)
        print(f"chart written to {args.plot}")
    return 0
