"""The ``bench`` command line (click). Nothing imports this module.

Errors a user can cause are one line on stderr and a non-zero exit, not a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from bench import EMOTIONS

_USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, KeyError, OSError,
                                                  ImportError)


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


def user_errors(func):
    """Turn the errors a user can cause into one clear line and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from bench.data.datasets import DatasetError
        from bench.data.media import MediaError

        try:
            return func(*args, **kwargs)
        except (DatasetError, MediaError, *_USER_ERRORS) as err:
            # a KeyError's str() is the repr of its message: take the message itself, so a
            # message that ends in a quote keeps it
            text = err.args[0] if isinstance(err, KeyError) and err.args else err
            message = str(text).strip() or err.__class__.__name__
            raise click.ClickException(message) from err

    return wrapper


def _run_config(**kw):
    from bench.stages.workspace import RunConfig, default_cache_dir

    return RunConfig(
        dataset=kw["dataset"], root=Path(kw["root"]) if kw.get("root") else None,
        split=kw.get("split"), models=tuple(kw.get("models") or ("all",)),
        budget=kw.get("budget", "demo"),
        metrics=tuple(kw["metrics"].split(",")) if kw.get("metrics") else None,
        protocol=kw.get("protocol") or "default", seed=kw.get("seed", 0),
        runs_dir=Path(kw.get("runs_dir", "runs")),
        cache_dir=Path(kw["cache_dir"]) if kw.get("cache_dir") else default_cache_dir(),
        leaderboard_dir=Path(kw.get("leaderboard_dir", "leaderboards")),
        device=kw.get("device"), workers=kw.get("workers"),
        executor=kw.get("executor") or "local", ray_address=kw.get("ray_address"),
        max_test_clips=kw.get("max_test_clips"), progress=not kw.get("quiet", False),
        openface=Path(kw["openface"]).resolve() if kw.get("openface") else None)


def _training_workspace(cfg):
    """The workspace of a training command and this process's torchrun world
    (`bench.stages.workspace.open_workspace`: rank 0 prepares the train and validation clips
    first)."""
    from bench.stages.workspace import open_workspace

    return open_workspace(cfg, _echo_err, ("train", "val"))


def _finish(world) -> None:
    """End a torchrun rank cleanly (`bench.core.distributed.finish_and_exit`)."""
    from bench.core import distributed

    distributed.finish_and_exit(world)


def weights_options(func):
    """--syncnet-weights / --fid-weights / --lpips-weights / --fvd-weights: official judge
    weights the user has (else the places listed in `bench.judges.syncnet`,
    `bench.judges.inception`, `bench.judges.lpips_net` and `bench.judges.i3d` are searched)."""
    func = click.option("--syncnet-weights", type=click.Path(exists=True, dir_okay=False),
                        default=None, help="syncnet_python's syncnet_v2.model (LSE).")(func)
    func = click.option("--fid-weights", type=click.Path(exists=True, dir_okay=False),
                        default=None,
                        help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth (FID).")(func)
    func = click.option("--lpips-weights", type=click.Path(exists=True, file_okay=False),
                        default=None,
                        help="Folder with torchvision's alexnet-owt-7be5be79.pth and the lpips "
                             "package's weights/v0.1/alex.pth (LPIPS).")(func)
    func = click.option("--fvd-weights", type=click.Path(exists=True, dir_okay=False),
                        default=None,
                        help="Kinetics-400 I3D state dict in pytorch-i3d's InceptionI3d(400) "
                             "layout, e.g. i3d_pretrained_400.pt (FVD).")(func)
    return func


def _use_weights(kw: dict) -> None:
    """Hand weight paths to the judges through their environment variables."""
    import os

    for option, env in (("syncnet_weights", "TALKBENCH_SYNCNET_WEIGHTS"),
                        ("fid_weights", "TALKBENCH_FID_WEIGHTS"),
                        ("lpips_weights", "TALKBENCH_LPIPS_WEIGHTS"),
                        ("fvd_weights", "TALKBENCH_FVD_WEIGHTS")):
        path = kw.pop(option, None)
        if path:
            os.environ[env] = str(Path(path).resolve())


def openface_option(func):
    """--openface: OpenFace CSVs of the dataset's real videos, the training AU labels of the
    models that learn from them (issue 15; `bench.stages.workspace.RunConfig.openface`)."""
    return click.option(
        "--openface", type=click.Path(exists=True, file_okay=False), default=None,
        help="Folder of OpenFace 2.x FeatureExtraction CSVs (-aus) of the dataset's real "
             "videos, named <clip_id>.csv: the training AU labels of the models that learn "
             "from AU labels (au-tcsan); clips without a CSV are labelled by the landmark "
             "rules.")(func)


def executor_options(func):
    """--executor / --ray-address: where clips are scored (issue 19)."""
    func = click.option("--ray-address", default=None,
                        help="With --executor ray: the cluster to join (e.g. 10.0.0.1:6379, "
                             "or auto); default: a local Ray instance with --workers CPUs.")(func)
    func = click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
                        show_default=True,
                        help="Score clips in local worker processes or on Ray actors "
                             "(pip install 'talkbench[ray]').")(func)
    return func


def data_options(func):
    func = click.option("--dataset", default="synthetic", show_default=True,
                        help="Dataset name (see `bench datasets`).")(func)
    func = click.option("--root", type=click.Path(), default=None,
                        help="Folder where the dataset's release is unpacked "
                             "(synthetic: omit to use the embedded corpus).")(func)
    func = click.option("--split", default=None,
                        help="Split name (default: the protocol's split for the dataset, "
                             "else the dataset's default split).")(func)
    func = click.option("--protocol", default="default", show_default=True,
                        help="A paper's evaluation setting (see `bench protocols`): split, "
                             "metrics, generation protocol, reported rows.")(func)
    func = click.option("--seed", default=0, show_default=True, type=int)(func)
    func = click.option("--cache-dir", type=click.Path(), default=None,
                        help="Cache folder (default $TALKBENCH_CACHE or "
                             "~/.cache/talkbench).")(func)
    func = click.option("--workers", type=int, default=None,
                        help="Worker processes for preprocessing and scoring (default: one "
                             "per core; scoring on a GPU: one).")(func)
    func = click.option("--quiet", is_flag=True, help="No progress bars.")(func)
    return func


@click.group()
@click.version_option(package_name="talkbench")
def main() -> None:
    """talkbench: evaluate and reproduce speech-driven talking-face generators."""


@main.command()
@click.option("--model", "models", multiple=True, default=("all",), show_default=True,
              help="Model name, `all`, or repeat the option (see `bench models`).")
@click.option("--adapter", "adapters", multiple=True,
              help="An outside adapter as module:Class (may repeat).")
@data_options
@click.option("--budget", type=click.Choice(["smoke", "demo", "paper"]), default="demo",
              show_default=True)
@click.option("--metrics", default=None, help="Comma-separated metric names (default: all).")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path())
@click.option("--leaderboard-dir", default="leaderboards", show_default=True, type=click.Path())
@click.option("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if present).")
@click.option("--max-test-clips", type=int, default=None,
              help="Score only the first N test clips.")
@openface_option
@executor_options
@weights_options
@user_errors
def run(models, adapters, **kw) -> None:
    """Train (or reuse), generate every test clip, score, and write the leaderboard."""
    from bench.runner import run as run_all

    _use_weights(kw)
    names = [m for m in models if m != "all"] + list(adapters)
    if "all" in models or not names:
        names = ["all"] + list(adapters)
    from bench.core import distributed

    result = run_all(_run_config(models=names, **kw), echo=_echo_err)
    if result is not None:  # None: a torchrun rank other than 0, which only trained
        click.echo(f"wrote {result.leaderboard_md} and {result.leaderboard_csv}")
        from bench.folder_scoring import scored_line

        for name, summary in result.summaries.items():
            skipped = len(summary["skipped"])
            click.echo(f"  {name}: {scored_line(summary)}"
                       + (f", {skipped} test clips skipped" if skipped else ""))
    _finish(distributed.current())


@main.command()
@click.option("--model", required=True, help="Model name or module:Class.")
@data_options
@click.option("--budget", type=click.Choice(["smoke", "demo", "paper"]), default="demo",
              show_default=True)
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path())
@click.option("--device", default=None)
@click.option("--set", "settings", multiple=True, metavar="FIELD=VALUE",
              help="Override a field of the budget's config (e.g. --set steps=40); repeatable.")
@openface_option
@user_errors
def train(model, settings, **kw) -> None:
    """Train one model on the split's train part (or reuse its checkpoint). Under
    ``torchrun --nproc-per-node N -m bench train ...`` the N processes train it together
    (data-parallel; see README "On a cluster")."""
    from bench.adapters import adapter_class, model_names
    from bench.stages.train import fit_or_load

    cls = adapter_class(model)
    if kw.get("openface") and "openface" not in cls.run_options:
        takers = [n for n in model_names() if "openface" in adapter_class(n).run_options]
        raise click.UsageError(f"--openface: {cls.name} does not learn from AU labels (models "
                               f"that do: {', '.join(takers) or 'none'})")
    ws, world = _training_workspace(_run_config(models=[model], **kw))
    trained = fit_or_load(ws, cls, ws.run_dir / cls.name, _settings(settings))
    if world.is_main:
        click.echo(f"{cls.name}: checkpoint in {ws.run_dir / cls.name / 'checkpoint'} "
                   f"({trained.log})")
    _finish(world)


def _settings(pairs: tuple[str, ...]) -> dict:
    """``FIELD=VALUE`` pairs; values are read as JSON when they parse (numbers, lists, true)."""
    out = {}
    for pair in pairs:
        field, sep, value = pair.partition("=")
        if not sep or not field:
            raise click.BadParameter(f"{pair!r}: expected FIELD=VALUE", param_hint="--set")
        try:
            out[field] = json.loads(value)
        except json.JSONDecodeError:
            out[field] = value
    return out


@main.command()
@click.option("--model", "models", multiple=True, default=("all",), show_default=True,
              help="Registered model name or module:Class (repeatable; 'all' for every one).")
@data_options
@click.option("--budget", type=click.Choice(["smoke", "demo", "paper"]), default="paper",
              show_default=True)
@click.option("--steps", default=5, show_default=True, type=int,
              help="Steps of each training stage (the first is left out as warm-up).")
@click.option("--clips", default=8, show_default=True, type=int,
              help="Training clips to load (the first of the split's train part).")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if present).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the measurements as JSON here.")
@click.option("--set", "settings", multiple=True, metavar="FIELD=VALUE",
              help="Change a config field of the budget (repeatable), e.g. --set batch=2.")
@user_errors
def profile(models, steps, clips, json_path, settings, **kw) -> None:
    """Time training steps of each model at a budget's sizes: s/step, frames/s, peak memory."""
    from bench.adapters.torch_base import TorchAdapter
    from bench.fileio import atomic_write_json
    from bench.profile import PROFILE_HEADER, profile_table, profile_training
    from bench.runner import resolve_models
    from bench.stages.workspace import Workspace

    ws = Workspace(_run_config(models=models, **kw), echo=_echo_err)
    refs = ws.prepare("train")[:clips]
    if not refs:
        raise click.ClickException("no prepared training clips")
    train = [ws.load_clip(r) for r in refs]
    rows: list[dict] = []
    click.echo(PROFILE_HEADER)
    for cls in resolve_models(models):
        if not issubclass(cls, TorchAdapter):
            _echo_err(f"{cls.name}: skipped (no training steps to time)")
            continue
        _echo_err(f"{cls.name}: {steps} steps per stage at the {kw['budget']} budget")
        rows.append(profile_training(cls, train, kw["budget"], steps, ws.device,
                                     kw["seed"], _settings(settings)))
        click.echo(profile_table(rows[-1:], header=False))  # each model as soon as it is done
        if json_path:
            atomic_write_json(Path(json_path), {"rows": rows})


@main.command()
@click.option("--model", required=True, help="Model name or module:Class.")
@click.option("--image", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Identity image (any format PIL reads).")
@click.option("--audio", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Speech (wav, mp3, or a video's audio track).")
@click.option("--emotion", type=click.Choice(EMOTIONS), default=None)
@click.option("--checkpoint", type=click.Path(exists=True, file_okay=False), default=None,
              help="A trained checkpoint folder (runs/<dataset>/<split>/<model>/checkpoint).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output .mp4.")
@click.option("--seed", default=0, type=int)
@user_errors
def generate(model, image, audio, emotion, checkpoint, out, seed) -> None:
    """One identity image + one audio -> one mp4 with sound."""
    from bench.adapters import adapter_class
    from bench.data.clip import align_audio
    from bench.data.media import write_video
    from bench.stages.generate import identity_from_photo, speech_from_file
    from bench.stages.train import load_checkpoint

    cls = adapter_class(model)
    adapter = cls(seed=seed)
    if checkpoint:
        load_checkpoint(adapter, Path(checkpoint))
    elif cls.trainable:
        raise click.ClickException(f"{cls.name} needs a trained --checkpoint "
                                   f"(train one with `bench train --model {cls.name}`)")
    speech = speech_from_file(Path(audio))
    picture = identity_from_photo(Path(image))
    frames = adapter.generate(picture, speech, emotion)

    aligned, _ = align_audio(speech, frames.shape[0])
    write_video(out, frames, aligned)
    click.echo(f"wrote {out} ({frames.shape[0]} frames at 25 fps)")


@main.command()
@data_options
@click.option("--parts", default="train,val,test", show_default=True,
              help="Which split parts to prepare.")
@user_errors
def prepare(parts, **kw) -> None:
    """Detect faces and landmarks, align, crop and cache the dataset's clips."""
    from bench.stages.workspace import Workspace

    ws = Workspace(_run_config(**kw), echo=_echo_err)
    for part in parts.split(","):
        refs = ws.prepare(part.strip())
        click.echo(f"{part}: {len(refs)}/{len(ws.parts[part.strip()])} clips prepared")
    if ws.failed:
        click.echo(f"{len(ws.failed)} clips skipped (reasons above)")


@main.command()
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Folder to write the corpus into.")
@click.option("--layout", type=click.Choice(["native", "crema-d", "grid", "tcd-timit"]),
              default="native", show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--speakers", default=12, show_default=True, type=int)
@click.option("--clips-per-speaker", default=6, show_default=True, type=int)
@click.option("--workers", type=int, default=None)
@user_errors
def synth(out, layout, seed, speakers, clips_per_speaker, workers) -> None:
    """Write the embedded synthetic talking-face corpus (deterministic from --seed)."""
    from bench.data.synth import build_corpus

    build_corpus(Path(out), layout=layout, seed=seed, n_speakers=speakers,
                 clips_per_speaker=clips_per_speaker, workers=workers)
    click.echo(f"wrote the {layout} synthetic corpus to {out}")


@main.command()
@click.option("--pred", "pred_dir", required=True, type=click.Path(file_okay=False),
              help="Folder of generated videos.")
@click.option("--gt", "gt_dir", type=click.Path(file_okay=False), default=None,
              help="Folder of ground-truth videos, matched by file name.")
@click.option("--identity", "identity_dir", type=click.Path(file_okay=False), default=None,
              help="Folder of identity images (default: first ground-truth frame).")
@click.option("--audio", "audio_dir", type=click.Path(file_okay=False), default=None,
              help="Folder of audio files (default: the videos' own audio).")
@click.option("--metrics", default=None, help="Comma-separated metric names (default: all).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: scores/<pred folder name>).")
@click.option("--align", type=click.Choice(["gt", "each", "none"]), default="gt",
              show_default=True, help="Face alignment: with the ground truth's transforms, "
                                      "each video on its own, or none (already crops).")
@click.option("--dataset", default=None,
              help="Use the judges trained on this dataset (LSE, EmoAcc, AU).")
@click.option("--emotion", type=click.Choice(EMOTIONS), default=None,
              help="The emotion every generated clip was asked for (EmoAcc).")
@click.option("--device", default=None)
@click.option("--cache-dir", type=click.Path(), default=None)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--workers", type=int, default=None,
              help="Scoring processes (default: one per core; one on a GPU).")
@click.option("--profile", is_flag=True,
              help="Print seconds per clip, share and frames/s of each metric, and the "
                   "wall time, device and workers.")
@click.option("--openface-pred", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of OpenFace 2.x CSVs (FeatureExtraction -aus) of the generated "
                   "videos, <clip>.csv: the AU metric's labels (with --openface-gt).")
@click.option("--openface-gt", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of OpenFace 2.x CSVs of the ground-truth videos, <clip>.csv (with "
                   "--openface-pred).")
@executor_options
@weights_options
@user_errors
def score(pred_dir, gt_dir, identity_dir, audio_dir, metrics, out_dir, quiet, **kw) -> None:
    """Score generated videos against ground truth (no adapter needed)."""
    from bench.folder_scoring import ScoreConfig, nothing_scored, run_score, scored_line

    _use_weights(kw)
    cfg = ScoreConfig(
        pred_dir=Path(pred_dir), gt_dir=Path(gt_dir) if gt_dir else None,
        identity_dir=Path(identity_dir) if identity_dir else None,
        audio_dir=Path(audio_dir) if audio_dir else None,
        out_dir=Path(out_dir) if out_dir else Path("scores") / Path(pred_dir).name,
        metrics=metrics.split(",") if metrics else None, align=kw["align"],
        dataset=kw["dataset"], emotion=kw["emotion"], device=kw["device"],
        cache_dir=Path(kw["cache_dir"]) if kw["cache_dir"] else None, progress=not quiet,
        workers=kw["workers"], executor=kw["executor"], ray_address=kw["ray_address"],
        openface_pred=Path(kw["openface_pred"]) if kw["openface_pred"] else None,
        openface_gt=Path(kw["openface_gt"]) if kw["openface_gt"] else None)
    result = run_score(cfg, echo=_echo_err)
    summary = result.summary
    if kw["profile"]:
        from bench.aggregate import profile_table

        click.echo(profile_table(summary["timing"], summary["n_scored"]))
    outcome = scored_line(summary)
    if nothing_scored(summary):
        raise click.ClickException(f"nothing was scored: {outcome} (reasons above); wrote "
                                   f"{cfg.out_dir / 'summary.json'}")
    click.echo(outcome + (f", {len(result.skipped)} skipped" if result.skipped else "")
               + f"; wrote {cfg.out_dir / 'scores.csv'}, {cfg.out_dir / 'summary.json'} and "
                 f"{result.leaderboard_md}")


@main.command()
@click.option("--dataset", default=None, help="One dataset (default: every dataset with runs).")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path())
@click.option("--leaderboard-dir", default="leaderboards", show_default=True, type=click.Path())
@user_errors
def leaderboard(dataset, runs_dir, leaderboard_dir) -> None:
    """Regenerate leaderboards/<dataset>.csv and .md from the run summaries."""
    from bench.leaderboard import write_leaderboard

    names = [dataset] if dataset else sorted(p.name for p in Path(runs_dir).glob("*")
                                             if p.is_dir())
    if not names:
        raise click.ClickException(f"no runs under {runs_dir}")
    for name in names:
        csv_path, md = write_leaderboard(name, Path(runs_dir), Path(leaderboard_dir),
                                         echo=_echo_err)
        click.echo(f"wrote {md} and {csv_path}")


@main.command()
@click.option("--dataset", default=None, help="One dataset (default: every dataset with runs).")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path())
@click.option("--leaderboard-dir", default="leaderboards", show_default=True, type=click.Path())
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder of the page (default: reports/<dataset> beside the leaderboard "
                   "folder; with several datasets, one folder each inside it).")
@user_errors
def report(dataset, runs_dir, leaderboard_dir, out_dir) -> None:
    """Write the static HTML report of a dataset's runs: leaderboard, plots, paired tests,
    videos, judges and provenance (index.html and its assets, no server needed)."""
    from bench.report.html import report_dir, write_report

    names = [dataset] if dataset else sorted(p.name for p in Path(runs_dir).glob("*")
                                             if p.is_dir())
    if not names:
        raise click.ClickException(f"no runs under {runs_dir}")
    for name in names:
        where = report_dir(Path(leaderboard_dir), name) if out_dir is None else (
            Path(out_dir) if dataset else Path(out_dir) / name)
        made = write_report(name, Path(runs_dir), where, echo=_echo_err)
        click.echo(f"wrote {made.page} ({len(made.plots)} plots, {len(made.videos)} videos)")


@main.group()
def judges() -> None:
    """Train the harness's own judges (SyncNet, emotion, AU classifiers) and report them."""


@judges.command("train")
@click.argument("name")
@data_options
@click.option("--budget", type=click.Choice(["smoke", "demo", "paper"]), default="demo",
              show_default=True)
@click.option("--device", default=None)
@user_errors
def judges_train(name, **kw) -> None:
    """Train judge NAME on the dataset's train split and cache it (see `bench judges list`)."""
    from bench.judges.store import JUDGES
    from bench.stages.judges import train_judge

    JUDGES.get(name)  # unknown names fail here, with a hint
    ws, world = _training_workspace(_run_config(**kw))
    judge = train_judge(ws, name)
    if world.is_main:
        click.echo(f"{name}: {judge.describe()} in {judge.directory}")
        click.echo(f"  log: {json.dumps(judge.record.get('log', {}))}")
    _finish(world)


@judges.command("report")
@data_options
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path())
@click.option("--device", default=None)
@user_errors
def judges_report(**kw) -> None:
    """Each trained judge of the dataset: provenance and quality on the real test clips."""
    from bench.stages.judges import report_judges
    from bench.stages.workspace import Workspace

    ws = Workspace(_run_config(**kw), echo=_echo_err)
    report = report_judges(ws)
    if not report:
        raise click.ClickException(f"no trained judges for {kw['dataset']}; train one with "
                                   f"`bench judges train NAME --dataset {kw['dataset']}`")
    from bench.leaderboard import judge_notes

    for line in judge_notes({ws.split.name: report}):
        click.echo(line)
    click.echo(f"wrote {ws.run_dir / 'judges.json'}")


@judges.command("list")
def judges_list() -> None:
    """List the trainable judges."""
    from bench.judges.store import JUDGES

    for name in JUDGES.names():
        click.echo(name)


@main.command()
def models() -> None:
    """List the registered models."""
    from bench.adapters import adapter_class, model_names

    click.echo(f"{'model':22s} {'uses':8s} {'params (paper budget)':>22s} "
               f"{'paper states':>13s}  reference")
    for name in model_names():
        cls = adapter_class(name)
        emotion = "emotion" if cls.needs_emotion else "-"
        ours, stated = _parameter_columns(cls)
        click.echo(f"{name:22s} {emotion:8s} {ours:>22s} {stated:>13s}  {cls.paper}")


def _parameter_columns(cls: type) -> tuple[str, str]:
    """Generation parameters at the paper budget, and the count the paper states (if any)."""
    from bench.adapters.torch_base import TorchAdapter

    if not issubclass(cls, TorchAdapter):
        return "-", "-"
    total = cls.parameter_counts("paper")["total"]
    stated = cls.paper_parameters.get("total") or sum(cls.paper_parameters.values())
    return f"{total / 1e6:.2f} M", (f"{stated / 1e6:.2f} M" if stated else "not stated")


@main.command()
def metrics() -> None:
    """List the registered metrics."""
    from bench.metrics import METRICS

    for name in METRICS.names():
        cls = METRICS.get(name)
        cols = ", ".join(f"{c.label} {'↑' if c.higher_is_better else '↓'}"
                         for c in cls.columns)
        click.echo(f"{name:12s} needs {','.join(sorted(cls.needs)) or '-':24s} {cols}")


@main.command()
@click.option("--root", type=click.Path(exists=True, file_okay=False), default=None,
              help="With --dataset: count clips per split part under this root.")
@click.option("--dataset", default=None)
@user_errors
def datasets(root, dataset) -> None:
    """List datasets and their splits (with sizes when --root is given)."""
    from bench.data.datasets import DATASETS, open_dataset
    from bench.data.splits import list_splits

    for name in DATASETS.names():
        if dataset and name != dataset:
            continue
        cls = DATASETS.get(name)
        click.echo(f"{name}: default split {cls.default_split}")
        scan = open_dataset(name, root).scan() if (root and dataset) else None
        for split in list_splits(name):
            line = f"  {split.name} (v{split.version}): {split.description}"
            if scan is not None:
                parts = split.apply(scan.clips)
                line += " | " + ", ".join(
                    f"{k} {len(v)} clips/{len({c.speaker for c in v})} speakers"
                    for k, v in parts.items())
            click.echo(line)


@main.command()
@click.argument("name", required=False)
@user_errors
def protocols(name) -> None:
    """List the evaluation protocols (one paper's setting each), or the one called NAME."""
    from bench.adapters import model_names
    from bench.protocols import get_protocol, protocol_names

    names = [name] if name else protocol_names()
    for i, item in enumerate(names):
        if i:
            click.echo("")
        for line in get_protocol(item).describe(model_names()):
            click.echo(line)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
