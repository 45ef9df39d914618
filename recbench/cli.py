"""The `recbench` command line: run, validate, list, leaderboard, compare, data."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import math
import sys
from pathlib import Path

from . import defaults
from .errors import RecbenchError

log = logging.getLogger("recbench")


def _setup_logging(verbosity: int) -> None:
    level = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}[max(-1, min(1, verbosity))]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s" if verbosity > 0
                                           else "%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (`--limit 0`, `--workers 0` are usage errors)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _tolerance(flag: str):
    """An argparse type: a finite float >= 0 (NaN, negative and infinite are refused)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(value) or value < 0:
            raise argparse.ArgumentTypeError(
                f"{flag} must be a finite number >= 0, not {text!r}")
        return value
    parse.__name__ = flag
    return parse


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0,
                        help="more output (-v: debug logging and tracebacks)")
    common.add_argument("-q", "--quiet", action="store_true",
                        help="only warnings and errors; no progress bars")
    p = argparse.ArgumentParser(prog="recbench", parents=[common],
                                description="Benchmark music recommenders under cold start.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", parents=[common], help="run a suite and write its leaderboards")
    r.add_argument("suite", help="suite TOML file")
    r.add_argument("-o", "--out", help="output folder (default: results/runs/<suite name>/)")
    r.add_argument("--resume", action="store_true", help="skip cells already finished in OUT")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a suite value, e.g. --set models.dcue.epochs=2 (repeatable)")
    r.add_argument("--device", choices=("auto", "cpu", "cuda"),
                   help="device for models (default: the suite's, else auto)")
    r.add_argument("--executor", help="executor plugin (default: the suite's, else local)")
    r.add_argument("--scheduler", help="Dask scheduler address (with --executor dask)")
    r.add_argument("--workers", type=positive_int,
                   help="parallel workers (process / dask executors)")
    r.add_argument("--threads", type=positive_int, help="threads per cell (default: local: "
                   "the usable CPUs; process / dask: 1)")
    r.add_argument("--limit", type=positive_int,
                   help="read at most this many input rows (smoke runs)")
    r.add_argument("--cache-dir", help="feature cache folder (default: $RECBENCH_CACHE or "
                   "~/.cache/recbench)")

    v = sub.add_parser("validate", parents=[common], help="validate a suite without running it")
    v.add_argument("suite")
    v.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    ls = sub.add_parser("list", parents=[common], help="list the registered plugins")
    ls.add_argument("--kind", help="only this kind (recommender, backbone, loss, sampler, "
                    "dataset, split, metric, executor, task)")
    ls.add_argument("--json", action="store_true", help="machine-readable output")

    lb = sub.add_parser("leaderboard", parents=[common], help="re-render OUT's leaderboards")
    lb.add_argument("out", help="a run's output folder")
    lb.add_argument("--suite", help="take references, primary metric and [[claims]] from "
                    "this suite (default: those saved in OUT when it ran)")
    lb.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a value of --suite (repeatable)")

    c = sub.add_parser("compare", parents=[common],
                       help="compare a candidate run with a baseline (exit 1 on regression)")
    c.add_argument("candidate", help="OUT folder or leaderboard.json")
    c.add_argument("--baseline", required=True, help="OUT folder or leaderboard.json")
    c.add_argument("--tolerance", type=_tolerance("--tolerance"), default=0.01,
                   help="allowed absolute drop before a metric counts as regressed "
                   "(default 0.01)")
    c.add_argument("--rel-tolerance", type=_tolerance("--rel-tolerance"), default=0.0,
                   help="allowed drop relative to the baseline value, e.g. 0.05 for 5%% "
                   "(for metrics on other scales, such as popularity@K in listeners); the "
                   "larger of the two tolerances applies (default 0)")
    c.add_argument("--metric", action="append", default=[], help="compare only this metric "
                   "(repeatable)")
    c.add_argument("--allow-different-data", action="store_true",
                   help="compare even when dataset/split fingerprints differ")

    d = sub.add_parser("data", parents=[common], help="dataset utilities")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    s = dsub.add_parser("synth", parents=[common],
                        help="write the synthetic dataset to disk in the folder format")
    s.add_argument("--preset", default=defaults.SYNTHETIC_PRESET,
                   help="synth-msd preset (tiny, small, default, paper)")
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="other synth-msd parameters, e.g. --set audible_share=0.5")
    s.add_argument("--out", required=True, help="output folder")
    return p


def cmd_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from .components import KINDS, Backbone, Metric, Recommender
    from .registry import build_registry

    def capabilities(cls: type) -> dict:
        """What a suite author needs beyond the parameters: a metric's cutoff and
        direction; a recommender's inputs and whether it is an oracle."""
        if issubclass(cls, Metric):
            return {"needs_k": bool(cls.needs_k), "higher_is_better": bool(cls.higher_is_better)}
        if issubclass(cls, Recommender):
            return {"consumes": list(cls.consumes),
                    "uses_test_interactions": bool(cls.uses_test_interactions)}
        if issubclass(cls, Backbone):  # the features it reads (logmel, waveform, embedding)
            return {"input_kind": str(cls.input_kind), "learnable": bool(cls.learnable)}
        return {}

    def _show(v) -> str:
        if isinstance(v, list):
            return ", ".join(map(str, v)) or "-"
        return "yes" if v is True else "no" if v is False else str(v)

    registry = build_registry()
    if args.kind and args.kind not in KINDS:
        from .registry.params import suggest

        raise RecbenchError(f"unknown kind {args.kind!r}.{suggest(args.kind, list(KINDS))} "
                            f"Kinds: {', '.join(KINDS)}")
    entries = registry.all(args.kind)
    if args.json:
        print(json.dumps([{"kind": e.kind, "name": e.name, "provider": e.provider,
                           "plugin": e.plugin, "description": e.description,
                           **capabilities(e.cls),
                           "params": [{"name": p.name, "type": p.type_name(),
                                       "default": p.default, "help": p.help}
                                      for p in e.cls.params]} for e in entries], indent=1,
                         default=str))
    else:
        print(tabulate([[e.kind, e.name, e.provider, e.description] for e in entries],
                       headers=["kind", "name", "provider", "description"]))
        if args.verbose:
            for e in entries:
                caps = capabilities(e.cls)
                if not e.cls.params and not caps:
                    continue
                oracle = " (oracle: ranked apart)" if caps.get("uses_test_interactions") else ""
                print(f"\n{e.kind} {e.name}"
                      + "".join(f"; {k}: {_show(v)}" for k, v in caps.items()) + oracle)
                if not e.cls.params:
                    continue
                print("parameters:")
                print(tabulate([[p.name, p.type_name(), repr(p.default), p.help]
                                for p in e.cls.params],
                               headers=["name", "type", "default", "help"]))
    for f in registry.failures:
        print(f"FAILED to load plugin {f.plugin} ({f.dist}): {f.error}", file=sys.stderr)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from .registry import default_registry
    from .suite import load_suite

    suite = load_suite(args.suite, default_registry(), args.overrides)
    if suite.notice:
        print(f"NOTICE: {suite.notice}", file=sys.stderr)
    for one in [suite, *suite.parts]:
        n = len(one.models) * len(one.seeds) * len(one.tasks)
        where = args.suite if one is suite else f"  part {one.name} ({one.path})"
        print(f"{where}: ok ({len(one.tasks)} tasks x {len(one.models)} models x "
              f"{len(one.seeds)} seeds = {n} cells; dataset {one.dataset.name}, split "
              f"{one.split.name})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .registry import default_registry
    from .run.options import executor_choice
    from .run.runner import run_suite
    from .suite import load_suite

    registry = default_registry()
    for f in registry.failures:
        log.warning("plugin %s (%s) failed to load: %s", f.plugin, f.dist, f.error)
    suite = load_suite(args.suite, registry, args.overrides)
    # default output: never a committed folder (baselines live in results/baselines/)
    out = Path(args.out) if args.out else Path("results") / "runs" / suite.name
    def run_one(one, folder: Path):
        if suite.parts:
            log.info("suite %s -> %s", one.name, folder)
        executor, exec_params = executor_choice(
            one, registry, executor=args.executor, workers=args.workers,
            threads=args.threads, scheduler=args.scheduler)
        return run_suite(one, folder, resume=args.resume, device=args.device,
                         executor_name=executor, executor_params=exec_params or None,
                         limit=args.limit, show_progress=not args.quiet,
                         cache_dir=args.cache_dir)

    # the suite's own cells, then each part's into OUT/parts/<name>/ (recbench.suite.parts)
    summary = run_one(suite, out)
    for part in suite.parts:
        if summary.interrupted:
            break
        summary = summary.add(run_one(part, out / "parts" / part.name))
    if suite.parts:
        from .leaderboard import write_leaderboards

        write_leaderboards(out, parts=[p.name for p in suite.parts])
    print(f"{summary.ran} cells run, {summary.skipped} skipped (already finished), "
          f"{summary.failed} failed; leaderboard: {out / 'leaderboard.md'}",
          file=sys.stderr)
    if not args.quiet and (out / "leaderboard.md").exists():
        print((out / "leaderboard.md").read_text(encoding="utf-8"))
    for failure in summary.failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return summary.exit_code


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from .leaderboard import rerender, saved_parts

    out = Path(args.out)
    if not ((out / "results.jsonl").exists() or (out / "cells").is_dir()):
        raise RecbenchError(f"{out}: no results.jsonl (is this a recbench output folder?)")
    if args.suite:
        from .registry import default_registry
        from .suite import load_suite

        suite = load_suite(args.suite, default_registry(), args.overrides)
        folders = [(suite, out), *((p, out / "parts" / p.name) for p in suite.parts)]
        for one, folder in reversed(folders):  # the parts first: the suite's board shows them
            if folder != out and not folder.is_dir():
                continue
            rerender(folder, one)
    else:
        for name in saved_parts(out):
            if (out / "parts" / name).is_dir():
                rerender(out / "parts" / name)
        rerender(out)
    print((out / "leaderboard.md").read_text(encoding="utf-8"))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .leaderboard.gate import run_compare

    return run_compare(args.candidate, args.baseline, tolerance=args.tolerance,
                       rel_tolerance=args.rel_tolerance, metrics=args.metric or None,
                       allow_different_data=args.allow_different_data)


def cmd_data(args: argparse.Namespace) -> int:
    from .components import DatasetLoader, LoadContext
    from .io.folder import write_dataset
    from .registry import default_registry
    from .run.plan import default_cache_dir
    from .suite import apply_override, parse_override

    registry = default_registry()
    raw: dict = {"preset": args.preset}
    if args.seed is not None:
        raw["seed"] = args.seed
    for ov in args.overrides:
        path, value = parse_override(ov)
        apply_override(raw, path, value, ov)
    entry = registry.get("dataset", defaults.SYNTHETIC_DATASET, key="data synth")
    loader = entry.cls(**raw)
    assert isinstance(loader, DatasetLoader)
    dataset = loader.load(LoadContext(cache_dir=default_cache_dir()))
    write_dataset(dataset, Path(args.out))
    print(f"wrote {dataset.name} ({dataset.n_users} users x {dataset.n_songs} songs, "
          f"{dataset.counts.nnz} interactions, fingerprint {dataset.fingerprint}) to {args.out}")
    return 0


COMMANDS = {"run": cmd_run, "validate": cmd_validate, "list": cmd_list,
            "leaderboard": cmd_leaderboard, "compare": cmd_compare, "data": cmd_data}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `recbench` console script."""
    args = _parser().parse_args(argv)
    # Thread policy (recbench/threads.py) before torch / numpy / implicit load.
    from .threads import configure_cli
    configure_cli(args.command, suite=getattr(args, "suite", None),
                  overrides=getattr(args, "overrides", None),
                  threads=getattr(args, "threads", None))
    verbosity = -1 if args.quiet else args.verbose
    _setup_logging(verbosity)
    try:
        return COMMANDS[args.command](args)
    except RecbenchError as exc:
        if args.verbose:
            log.exception("error")
        print(f"recbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("recbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `recbench list | head`
        return 0
    except OSError as exc:  # output folder is a file, read-only, full disk, ...
        if args.verbose:
            log.exception("error")
        print(f"recbench: error: {_os_error(exc)}", file=sys.stderr)
        return 2


def _os_error(exc: OSError) -> str:
    """One line for a filesystem error: the path, what happened, and a hint."""
    what = exc.strerror or str(exc) or type(exc).__name__
    where = exc.filename if exc.filename is not None else None
    text = f"{where}: {what}" if where else what
    hint = {errno.ENOSPC: " (the disk is full: free space, then rerun with --resume)",
            errno.EDQUOT: " (disk quota exceeded: free space, then rerun with --resume)",
            errno.EROFS: " (read-only filesystem: choose another output folder with -o)",
            errno.EACCES: " (no permission: choose another output folder with -o)"}
    extra = hint.get(exc.errno, "") if exc.errno is not None else ""
    return " ".join((text + extra).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
