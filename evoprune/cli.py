"""The ``evoprune`` command: one subcommand per registered method, its options generated from the
method's settings, plus ``evaluate``, ``summary`` and ``list``."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from .checkpoints import is_unfinished
from .config import cli_fields, read_config_file
from .errors import EvopruneError
from .methods import all_methods, by_command
from .methods.emofp.pick import SIZE_BOUNDS


class _Parser(argparse.ArgumentParser):
    """Bad options get one line naming them (not the whole usage), and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="evoprune", description="Prune PyTorch CNNs by multi-objective "
                                     "evolutionary search with pymoo.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for method in all_methods():
        _add_options(sub.add_parser(method.command, help=method.help, description=method.description), method.config)

    check = sub.add_parser("evaluate", help="load a saved model file (sparse or dense) and report its test accuracy "
                           "and nonzero weights", description="Rebuild the network in a sparse (.sparse.pt) or "
                           "pruned-model file and evaluate it on the test split.")
    check.add_argument("model_file")
    _add_model_data_options(check)
    export = sub.add_parser("export", help="export a saved model to ONNX, checked against PyTorch",
                            description="Write a saved model (pruned or sparse) as ONNX and, with onnxruntime "
                            "installed, check its outputs against PyTorch's on test images.")
    export.add_argument("model_file")
    export.add_argument("--onnx", required=True, help="ONNX file to write (.onnx)")
    _add_model_data_options(export)
    resume = sub.add_parser("resume", help="continue a killed or interrupted run from its last checkpoint",
                            description="Continue the unfinished run in RUN_DIR with the settings recorded there, from "
                            "its last finished generation, base model or fine-tuned model.")
    resume.add_argument("run_dir")
    _add_code_option(resume)
    pick = sub.add_parser("pick", help="choose a network from a filter-pruning run's front and fine-tune it",
                          description="Choose one network from the front of a finished filter-pruning run, fine-tune "
                          "it as the run did unless it already is, and print its row of finetuned.csv.")
    pick.add_argument("run_dir")
    _add_code_option(pick)
    pick.add_argument("--by", required=True, help="knee (pymoo's high trade-off point), asf or pseudo-weights "
                      "(with --value w1,w2: a weight per objective), max-drop (--value: the smallest network within "
                      "this validation accuracy drop, a fraction), " + " / ".join(SIZE_BOUNDS) + " (--value: the "
                      "most accurate network with at most this many " + " / ".join(SIZE_BOUNDS.values()) + ")")
    pick.add_argument("--value", help="the weights or the bound that --by needs")
    summary = sub.add_parser("summary", help="print the summary table of a run directory",
                             description="Print a run's base model, search and results, as its method reports them.")
    summary.add_argument("run_dir")
    sub.add_parser("list", help="list known methods, models, data sets and importance criteria",
                   description="List what can be named on the command line.")
    return parser


def _add_code_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="FILE.py:NAME", help="for a run made with your own architecture: name "
                        "its code again (importing it runs it, so it is never imported from what a run records)")


def _add_model_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="architecture to load into (default: the one named in the file; a file made "
                        "with your own architecture needs its FILE.py:NAME named again)")
    parser.add_argument("--dataset", help="data set name (see `evoprune list`; default: the one recorded in the "
                        "file, else mnist-mini)")
    parser.add_argument("--data-root", help="directory holding the data set's files (default: the one recorded)")


def _add_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """--out, --config and one option per setting of ``cls``, with the setting's own help."""
    parser.add_argument("--out", required=True, help="new run directory to write (never overwritten)")
    parser.add_argument("--config", help="TOML file of settings (keys as the options below, with underscores); "
                        "options given on the command line win")
    for f, default, kind in cli_fields(cls):
        flag = "--" + f.name.replace("_", "-")
        if kind is bool and default is not False:
            # on by default (or by a rule its help gives): --no-<name> turns it off
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=f.metadata["help"] + (" (default: on)" if default else ""))
        elif kind is bool:
            parser.add_argument(flag, action="store_true", default=None, help=f.metadata["help"])
        else:
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
            # a None default that depends on other settings says so in its own help
            said = default is None and "default" in f.metadata["help"]
            parser.add_argument(flag, type=kind, default=None, metavar=f.name.upper(),
                                help=f.metadata["help"] + ("" if said else f" (default: {shown})"))


def _settings(args, cls: type):
    """The validated settings: the config file's, overridden by the command line's."""
    settings = read_config_file(args.config, cls) if args.config else {}
    settings.update({f.name: getattr(args, f.name) for f, _, _ in cli_fields(cls) if getattr(args, f.name) is not None})
    return cls(**settings).validate()


def _saved_model(args):
    """The model in ``args.model_file``, the file's contents, and the test split of the data set
    recorded in it (or named on the command line)."""
    from .data import DATASETS, load_dataset
    from .fingerprints import data_fingerprint
    from .models import check_input_shape
    from .models.saving import read_format
    from .models.sparse import load_model_file

    blob = read_format(args.model_file, None, "model")
    model = load_model_file(args.model_file, _named_model(args.model))
    recorded = blob.get("meta", {}).get("data") or {}
    known = recorded.get("dataset") in DATASETS
    if recorded and not known and not args.dataset:
        raise EvopruneError(f"{args.model_file} was made on data splits passed to the Python API: name the data to "
                            "measure it on with --dataset (see `evoprune list`)")
    dataset = args.dataset or (recorded["dataset"] if known else "mnist-mini")
    root = args.data_root or (recorded.get("root") if known and not args.dataset else None)
    data = load_dataset(dataset, root)
    label = f"the model in {args.model_file}"
    outputs = check_input_shape(model, data.input_shape, label)
    if outputs < data.num_classes:
        raise EvopruneError(f"{label} has {outputs} outputs but {dataset} has {data.num_classes} classes")
    made_on = recorded.get("test_fingerprint")
    if made_on and not (args.dataset or args.data_root) and data_fingerprint(data.test) != made_on:
        raise EvopruneError(f"the test images of {dataset}{f' in {root}' if root else ''} differ from those "
                            f"{args.model_file} was made with; name its data with --dataset and --data-root")
    return model, blob, data.test


def _named_model(name: str | None):
    """The architecture ``--model`` names, or None when it names none or the user's own code (then
    the file's recorded architecture is built from that code)."""
    from .models.registry import build_model, is_own_code, trust_named_code

    if name is None or is_own_code(name):
        trust_named_code(name)
        return None
    return build_model(name)


def _evaluate_file(args) -> None:
    from .models.registry import build_arch

    model, blob, test = _saved_model(args)
    arch = blob.get("arch")
    base = _named_model(args.model) or (build_arch(arch) if arch else None)  # to report compression against
    print(describe(args.model_file, model, test, base))


def describe(path, model, test, base=None) -> str:
    """One line: file size, nonzero weights of the conv / linear layers, compression against the
    unpruned ``base`` architecture (else against the file's own dense shapes) and test accuracy."""
    from .models.sparse import file_size
    from .pruning.masks import prunable_weights
    from .train import evaluate

    weights = prunable_weights(model).values()
    nonzero, total = sum(int((w != 0).sum()) for w in weights), sum(w.numel() for w in weights)
    dense = sum(w.numel() for w in prunable_weights(base).values()) if base is not None else total
    against = f" of the base's {dense:,}" if dense != total else ""
    return (f"{path}: {file_size(path):,} bytes, {nonzero:,} of {total:,} weights nonzero "
            f"({dense / max(nonzero, 1):.1f}x compression{against}), test accuracy "
            f"{evaluate(model, test)['accuracy']:.4f}")


def _list() -> None:
    from .data import DATASETS
    from .models import MODELS
    from .pruning import IMPORTANCES

    commands = [f"{m.command} ({m.name})" for m in all_methods()]
    print("methods:  " + ", ".join(commands))
    print("models:   " + ", ".join(MODELS.names()) + ", or your own: FILE.py:NAME, MODULE:NAME")
    print("datasets: " + ", ".join(DATASETS.names()))
    print("criteria: " + ", ".join(IMPORTANCES.names()) + " (filters --criterion also takes cluster)")


class _Terminated(KeyboardInterrupt):
    """SIGTERM, what a batch scheduler sends before it kills a job: handled as Ctrl-C is."""


def _terminate(signum, frame):
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: signals are the host program's business
        previous = None
    try:
        return _run(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(args) -> int:
    try:
        if getattr(args, "model", None) and args.command in ("resume", "pick"):
            from .models.registry import is_own_code, trust_named_code

            if not is_own_code(args.model):
                raise EvopruneError(f"{args.command} --model names your own architecture's code, FILE.py:NAME or "
                                    f"MODULE:NAME; {args.model!r} is not such a name (a run's other models are "
                                    "rebuilt from what it records)")
            trust_named_code(args.model)
        if args.command == "evaluate":
            _evaluate_file(args)
        elif args.command == "summary":
            from .methods import summary

            print(summary(args.run_dir))
        elif args.command == "list":
            _list()
        elif args.command == "export":
            from .export import check_onnx_name, export_onnx

            check_onnx_name(args.onnx)  # before loading anything
            model, _, test = _saved_model(args)
            print(export_onnx(model, args.onnx, test))
        elif args.command == "pick":
            from .methods.emofp.pick import pick

            print(pick(args.run_dir, args.by, args.value).to_string())
        elif args.command == "resume":
            from .methods import resume, summary

            resume(args.run_dir)
            print(summary(args.run_dir))
        else:
            method = by_command(args.command)
            method.run(_settings(args, method.config), Path(args.out))
            print(method.summary(Path(args.out)))
    except EvopruneError as e:
        print(f"evoprune: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a file removed under the run: not bad input, still one line
        where = f" {e.filename}:" if e.filename else ""
        print(f"evoprune: error:{where} {e.strerror or e}{_resume_hint(args, 'once fixed, continue with')}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print(f"evoprune: {'terminated' if isinstance(e, _Terminated) else 'interrupted'}"
              f"{_resume_hint(args, 'continue it with')}", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(e, _Terminated) else signal.SIGINT)
    return 0


def _resume_hint(args, words: str) -> str:
    """``; <words> `evoprune resume RUN` `` if the command's run directory holds an unfinished run."""
    run = getattr(args, "out", None) or getattr(args, "run_dir", None)
    return f"; {words} `evoprune resume {run}`" if run and is_unfinished(Path(run)) else ""


if __name__ == "__main__":
    sys.exit(main())
