"""The ``coe-template`` command: train, evaluate and predict from the terminal."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import click

from coe_template.args import ArgsError, load_args
from coe_template.data import DatasetError, bundled_dataset_path, load_dataset
from coe_template.evaluate import evaluate as score
from coe_template.predict import predict as predict_texts
from coe_template.store import ArtifactError, latest_run_id, list_runs, load_artifacts, save_run
from coe_template.train import train as train_model
from config.settings import Settings

_STEPS = ("splitting data", "fitting the pipeline", "choosing the threshold", "evaluating on the test split")


def _echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2))


def _load(run_id: str | None, store: Path):
    try:
        return load_artifacts(run_id or latest_run_id(store), store)
    except ArtifactError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
@click.option("--store", type=click.Path(file_okay=False, path_type=Path),
              help="Model store directory [default: $COE_MODEL_STORE or ./model-store].")
@click.pass_context
def main(ctx: click.Context, store: Path | None) -> None:
    """Train, evaluate and use the project tagger."""
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    ctx.obj = settings if store is None else replace(settings, model_store=store)


@main.command()
@click.option("--data", "data_path", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV with title, description and tag columns [default: the bundled dataset].")
@click.option("--args", "args_path", type=click.Path(dir_okay=False, path_type=Path),
              help="JSON file of training arguments [default: config/args.json].")
@click.option("--if-missing", is_flag=True, help="Do nothing if the store already holds a run.")
@click.pass_obj
def train(settings: Settings, data_path: Path | None, args_path: Path | None, if_missing: bool) -> None:
    """Train a model and store it as a new run."""
    if if_missing and list_runs(settings.model_store):
        click.echo(f"model store already holds run {latest_run_id(settings.model_store)}; not training")
        return
    try:
        args = load_args(args_path or settings.training_args)
        dataset = load_dataset(data_path or bundled_dataset_path())
        with click.progressbar(length=len(_STEPS), label="training", file=sys.stderr) as bar:
            def progress(step: str) -> None:
                bar.label = step
                bar.update(1)
            model = train_model(dataset, args, progress)
    except (ArgsError, DatasetError) as exc:
        raise click.ClickException(str(exc)) from None
    run_id = save_run(model, settings.model_store)
    click.echo(f"run {run_id}: trained on {len(dataset)} rows, threshold {model.threshold}")
    _echo_json({"run_id": run_id, "test": model.performance["overall"]})


@main.command()
@click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Labeled CSV to score the run on.")
@click.option("--run-id", help="Run to evaluate [default: the newest].")
@click.pass_obj
def evaluate(settings: Settings, data_path: Path, run_id: str | None) -> None:
    """Score a stored run on a labeled CSV it was not trained on."""
    artifacts = _load(run_id, settings.model_store)
    try:
        dataset = load_dataset(data_path)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None
    predicted = [p["predicted_tag"] for p in predict_texts(dataset.texts, artifacts)]
    _echo_json({"run_id": artifacts.run_id, "data": str(data_path),
                "performance": score(dataset.texts, dataset.tags, predicted, artifacts.labels)})


@main.command()
@click.argument("texts", nargs=-1, required=True)
@click.option("--run-id", help="Run to predict with [default: the newest].")
@click.pass_obj
def predict(settings: Settings, texts: tuple[str, ...], run_id: str | None) -> None:
    """Tag each TEXT (a project's title and description)."""
    if not all(t.strip() for t in texts):
        raise click.BadParameter("every text must contain a non-whitespace character", param_hint="TEXTS")
    _echo_json(predict_texts(list(texts), _load(run_id, settings.model_store)))


if __name__ == "__main__":
    main()
