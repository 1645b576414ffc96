"""The ``evoprune`` command."""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from .config import FilterSearchConfig, read_config_file
from .errors import EvopruneError

HELP = {
    "model": "architecture to prune (see `evoprune list`)",
    "dataset": "data set name (see `evoprune list`)",
    "data_root": "directory holding the data set's files (official IDX files or torchvision's layout)",
    "download": "download the data set with torchvision if it is not under --data-root",
    "val_size": "validation images carved from the training set (default: a sixth, at most 5000)",
    "seed": "seed for data split, training, and search (torch, numpy and pymoo)",
    "epochs": "epochs to train the base model (cached by its settings)",
    "lr": "learning rate of the base training",
    "optimizer": "sgd or adam",
    "batch_size": "training batch size",
    "cache_dir": "where trained base models are cached ('none' disables the cache)",
    "criterion": "filter importance criterion: l1 or l2",
    "max_ratio": "largest fraction of filters removed from one layer, in [0, 1)",
    "max_drop": "largest allowed validation-accuracy drop, as a fraction (0.05 = 5 points)",
    "objectives": "comma-separated objectives, all minimised: error and one or more of filters, flops, params, "
                  "latency (three or more use NSGA-III)",
    "screen": "two-step fitness: first evaluate each network on this many validation images, and on all of "
              "them only if it could still be feasible and non-dominated (default: off)",
    "pop_size": "population size",
    "generations": "generations of the search",
    "eval_batch_size": "batch size of candidate evaluation",
    "select": "number of models fine-tuned, spread uniformly along the front",
    "finetune_epochs": "fine-tuning epochs per selected model",
    "finetune_lr": "fine-tuning learning rate",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evoprune", description="Prune PyTorch CNNs by multi-objective "
                                     "evolutionary search with pymoo.")
    sub = parser.add_subparsers(dest="command", required=True)

    filters = sub.add_parser("filters", help="EMOFP: search per-layer filter-pruning ratios with NSGA-II, "
                             "fine-tune models along the Pareto front", description="Search per-layer filter-pruning "
                             "ratios (objectives: filters kept, validation error; constraint: accuracy drop), "
                             "fine-tune models spread along the front, write a run directory.")
    filters.add_argument("--out", required=True, help="new run directory to write (never overwritten)")
    filters.add_argument("--config", help="TOML file of settings (keys as the options below, with underscores); "
                         "options given on the command line win")
    defaults = FilterSearchConfig()
    for f in fields(FilterSearchConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if isinstance(default, bool):
            filters.add_argument(flag, action="store_true", default=None, help=HELP[f.name])
        else:
            kind = {"val_size": int, "screen": int, "objectives": str, "data_root": str, "cache_dir": str}.get(
                f.name, type(default))
            filters.add_argument(flag, type=kind, default=None, metavar=f.name.upper(),
                                 help=f"{HELP[f.name]} (default: {_show(default)})")

    summary = sub.add_parser("summary", help="print the summary table of a run directory",
                             description="Print a run's base model, search and fine-tuned models.")
    summary.add_argument("run_dir")
    sub.add_parser("list", help="list known models, data sets and importance criteria",
                   description="List what can be named on the command line.")
    return parser


def _show(default) -> str:
    return ",".join(default) if isinstance(default, tuple) else str(default)


def _run_filters(args) -> None:
    from .search import run_filter_search

    settings = read_config_file(args.config) if args.config else {}
    settings.update({f.name: getattr(args, f.name) for f in fields(FilterSearchConfig)
                     if getattr(args, f.name) is not None})
    if str(settings.get("cache_dir", "")).lower() == "none":
        settings["cache_dir"] = None
    cfg = FilterSearchConfig(**settings).validate()
    result = run_filter_search(cfg, args.out)
    from .report import summary

    print(summary(result.out))


def _list() -> None:
    from .data import DATASETS
    from .models import MODELS
    from .pruning import IMPORTANCES

    print("models:   " + ", ".join(MODELS.names()))
    print("datasets: " + ", ".join(DATASETS.names()))
    print("criteria: " + ", ".join(IMPORTANCES.names()))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "filters":
            _run_filters(args)
        elif args.command == "summary":
            from .report import summary

            print(summary(args.run_dir))
        else:
            _list()
    except EvopruneError as e:
        print(f"evoprune: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
