"""The ``evoprune`` command."""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from .config import FilterSearchConfig, SensitivityConfig, WeightPruningConfig, read_config_file
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
    "max_drop": "largest allowed validation-accuracy drop of a candidate, as a fraction (0.05 = 5 points); "
                "for weights, before fine-tuning, against the round's starting network",
    "objectives": "comma-separated objectives, all minimised: error and one or more of filters, flops, params, "
                  "latency (three or more use NSGA-III)",
    "screen": "two-step fitness: first evaluate each network on this many validation images, and on all of "
              "them only if it could still be feasible and non-dominated (default: off)",
    "bn_calibration": "re-measure each candidate's BatchNorm statistics on this many training images before "
                      "evaluating it (0: off)",
    "pop_size": "population size of the evolutionary search (NSGA-II/III or DE)",
    "generations": "generations of the evolutionary search (per round for weights)",
    "eval_batch_size": "batch size of candidate evaluation",
    "select": "number of models fine-tuned, spread uniformly along the front",
    "finetune_epochs": "fine-tuning epochs per selected model (per round for weights)",
    "finetune_lr": "fine-tuning learning rate",
    "layers": "comma-separated names of the conv/linear modules to prune, e.g. 1,3 (default: all of them)",
    "s_min": "smallest sensitivity s swept and searched (threshold = s * std of the layer's weights), >= 0",
    "s_max": "largest sensitivity s swept; each layer's search bound comes from the sweep",
    "sweep_steps": "number of sensitivities swept from s_min to s_max",
    "layer_drop": "a layer's search bound is the first swept s at which pruning it alone costs more than this "
                  "validation-accuracy fraction",
    "search_val_size": "validation images used by the search (default: all); final figures use all",
    "de_variant": "pymoo DE variant DE/<rand|best|target-to-best>/<1|2>/<bin|exp>",
    "de_cr": "DE crossover rate CR in [0, 1]",
    "de_f": "DE differential weight F > 0",
    "de_mutation": "probability that pymoo's DE adds polynomial mutation to an offspring (0: classic DE)",
    "rounds": "largest number of prune / fine-tune rounds",
    "target_compression": "stop once dense / nonzero weights reaches this (> 1)",
    "min_gain": "stop when a round raises compression by less than this fraction",
    "accept_drop": "a round is rejected (undone, and the next searches with half the max_drop) when fine-tuned "
                   "validation accuracy ends more than this fraction below the base's",
    "patience": "stop after this many rejected rounds in a row",
    "recovery_rate": "fraction of removed connections re-enabled at random during fine-tuning, in [0, 1)",
    "recovery_schedule": "when connections are recovered: once (before fine-tuning) or epoch (before every epoch)",
    "recovery_init": "recovered weights restart at N(0, (this * std)^2); 0 restarts them at zero",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evoprune", description="Prune PyTorch CNNs by multi-objective "
                                     "evolutionary search with pymoo.")
    sub = parser.add_subparsers(dest="command", required=True)

    filters = sub.add_parser("filters", help="EMOFP: search per-layer filter-pruning ratios with NSGA-II, "
                             "fine-tune models along the Pareto front", description="Search per-layer filter-pruning "
                             "ratios (objectives: filters kept, validation error; constraint: accuracy drop), "
                             "fine-tune models spread along the front, write a run directory.")
    _add_options(filters, FilterSearchConfig)
    weights = sub.add_parser("weights", help="DENNC: layer-wise weight pruning, per-layer sensitivities "
                             "searched by differential evolution, in rounds with fine-tuning",
                             description="Prune conv and linear weights by magnitude, with per-layer "
                             "thresholds s * std chosen by pymoo's DE (objective: weights kept; constraint: "
                             "accuracy drop), in rounds of search, pruning and masked fine-tuning with recovery; "
                             "write a run directory with a sparse model file.")
    _add_options(weights, WeightPruningConfig)
    sensitivity = sub.add_parser("sensitivity", help="prune each layer alone at a sweep of sensitivities and "
                                 "record validation accuracy", description="Sensitivity analysis: each conv and "
                                 "linear layer pruned alone at thresholds s * std for s from --s-min to --s-max.")
    _add_options(sensitivity, SensitivityConfig)

    check = sub.add_parser("evaluate", help="load a saved model file (sparse or dense) and report its test accuracy "
                           "and nonzero weights", description="Rebuild the network in a sparse (.sparse.pt) or "
                           "pruned-model file and evaluate it on the test split.")
    check.add_argument("model_file")
    check.add_argument("--model", help="architecture to load into (default: the one named in the file)")
    check.add_argument("--dataset", default="mnist-mini", help=HELP["dataset"])
    check.add_argument("--data-root", help=HELP["data_root"])
    summary = sub.add_parser("summary", help="print the summary table of a run directory",
                             description="Print a run's base model, search and fine-tuned models.")
    summary.add_argument("run_dir")
    sub.add_parser("list", help="list known models, data sets and importance criteria",
                   description="List what can be named on the command line.")
    return parser


def _add_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """--out, --config and one option per setting of the dataclass ``cls``."""
    parser.add_argument("--out", required=True, help="new run directory to write (never overwritten)")
    parser.add_argument("--config", help="TOML file of settings (keys as the options below, with underscores); "
                        "options given on the command line win")
    defaults = cls()
    for f in fields(cls):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", default=None, help=HELP[f.name])
        else:
            if isinstance(default, tuple):
                kind, shown = str, ",".join(default)
            elif default is None:
                kind, shown = (int if f.name.endswith("_size") or f.name == "screen" else str), default
            else:
                kind, shown = type(default), default
            parser.add_argument(flag, type=kind, default=None, metavar=f.name.upper(),
                                help=f"{HELP[f.name]} (default: {shown})")


def _settings(args, cls: type):
    """The validated settings: the config file's, overridden by the command line's."""
    settings = read_config_file(args.config, cls) if args.config else {}
    settings.update({f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name) is not None})
    if str(settings.get("cache_dir", "")).lower() == "none":
        settings["cache_dir"] = None
    return cls(**settings).validate()


def _run_filters(args) -> None:
    from .search import run_filter_search

    result = run_filter_search(_settings(args, FilterSearchConfig), args.out)
    from .report import summary

    print(summary(result.out))


def _run_weights(args) -> None:
    from .dennc import run_dennc
    from .weights_report import weights_summary

    result = run_dennc(_settings(args, WeightPruningConfig), args.out)
    print(weights_summary(result.out))


def _run_sensitivity(args) -> None:
    from .dennc import run_sensitivity

    scan = run_sensitivity(_settings(args, SensitivityConfig), args.out)
    print(scan.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def _evaluate_file(args) -> None:
    from .data import load_dataset
    from .models import build_model
    from .pruning.sparse import describe, load_model_file

    model = load_model_file(args.model_file, build_model(args.model) if args.model else None)
    test = load_dataset(args.dataset, args.data_root).test
    print(describe(args.model_file, model, test))


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
        elif args.command == "weights":
            _run_weights(args)
        elif args.command == "sensitivity":
            _run_sensitivity(args)
        elif args.command == "evaluate":
            _evaluate_file(args)
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
