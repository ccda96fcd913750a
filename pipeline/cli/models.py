"""The model: `ecoute train`, `ecoute train-intents`, and the benchmarks (`ecoute bench …`).
Each command imports what it runs inside its body, so that `ecoute --help` does not wait for torch."""
from __future__ import annotations

import logging
from pathlib import Path

import click

from pipeline.cli.common import RULES_HELP, open_rules


@click.group(invoke_without_command=True)
@click.option("--rules", "rules_file", help=RULES_HELP)
@click.option("--data", type=click.Path(exists=True, file_okay=False), help="Data folder (default: ../shared/data).")
@click.option("--no-speed", is_flag=True, help="Skip the throughput measurements.")
@click.pass_context
def bench(ctx, rules_file, data, no_speed):
    """Quality on the public test splits next to published anchors, peers, throughput, memory.

    With a subcommand, another benchmark (`ecoute bench queue`).

    \b
    Example:
      ecoute bench > bench.txt
    """
    if ctx.invoked_subcommand is not None:
        return
    from pipeline.bench import run
    from pipeline.models.train import DEFAULT_DATA

    source = Path(data) if data else DEFAULT_DATA
    if not (source / "umsab").is_dir():
        raise click.ClickException(f"{source}: expected umsab/ and complaints/ folders (see ../shared/data/README.md)")
    run(open_rules(rules_file), source, click.echo, speed=not no_speed, rules_file=rules_file)


@bench.command("queue")
@click.option("--db", help="Store to fill and use (default: a temporary SQLite file).")
@click.option("--open-items", default=100_000, show_default=True, help="Open cases in the store.")
@click.option("--agents", default=20, show_default=True, help="Concurrent agents.")
@click.option("--seconds", default=30.0, show_default=True, help="How long the agents work.")
def bench_queue(db, open_items, agents, seconds):
    """The desk under load: first queue page time, then agents claiming, replying, resolving at once.

    \b
    Example:
      ecoute bench queue --open-items 100000 --agents 20 --seconds 30 --db postgresql+psycopg://127.0.0.1/ecoute
    """
    from pipeline.bench.bench_queue import run

    run(db, open_items, agents, seconds, click.echo)


@bench.command("trends")
@click.option("--mentions", "total", default=1_000_000, show_default=True,
              help="Synthetic classified mentions in the store (over the last year; reused when there).")
@click.option("--db", help="Store to fill and use (default: a temporary SQLite file).")
def bench_trends(total, db):
    """Time the Trends page's queries and mentions(since="30d") on a big store; last line is JSON.

    \b
    Example:
      ecoute bench trends --mentions 1000000 --db bench-trends.db
    """
    from pipeline.bench.bench_trends import run

    run(db, total, click.echo)


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), help="Data folder (default: ../shared/data).")
@click.option("--encoder", default="embedded", show_default=True, help="'embedded', a Hugging Face id or a path.")
@click.option("--heads", "heads_dir", type=click.Path(file_okay=False), help="Where to write the heads "
              "(default: pipeline/models/heads, the shipped ones).")
@click.option("--max-length", default=128, show_default=True)
@click.option("--epochs", default=3, show_default=True,
              help="Epochs of LoRA fine-tuning of the encoder before the heads (0: keep the encoder frozen).")
@click.option("--top-layers", default=6, show_default=True,
              help="How many of the encoder's top layers get the adapter (0: all of them); the layers below are "
                   "computed once per text, so fewer is faster.")
@click.option("--adapter", "adapter_from", type=click.Path(exists=True, file_okay=False),
              help="Train the heads on this already trained adapter (copied; no fine-tuning), "
                   "e.g. pipeline/models/heads/adapter.")
@click.option("--backend", type=click.Choice(["onnx-int8", "onnx", "torch"]), default="onnx-int8", show_default=True,
              help="The encoder backend whose embeddings the heads learn; written in the card, and the one the "
                   "pipeline runs with these heads unless rules.yaml sets models.backend.")
def train(data, encoder, heads_dir, max_length, epochs, top_layers, adapter_from, backend):
    """Retrain the sentiment, complaint, irony and emotion heads from the train/val splits; writes a model card.

    \b
    Example:
      ecoute train --encoder intfloat/multilingual-e5-small --heads my-heads
      ecoute train --adapter pipeline/models/heads/adapter --heads my-heads   # heads only, on the shipped adapter
    """
    from pipeline.models import heads as H
    from pipeline.models.train import DEFAULT_DATA, train as run_training

    logging.getLogger().setLevel(logging.INFO)
    source = Path(data) if data else DEFAULT_DATA
    if not (source / "umsab").is_dir() or not (source / "complaints").is_dir():
        raise click.ClickException(f"{source}: expected umsab/ and complaints/ folders (see ../shared/data/README.md)")
    card = run_training(source, encoder, Path(heads_dir) if heads_dir else H.HEADS_DIR, max_length,
                        finetune_epochs=epochs, adapter_from=Path(adapter_from) if adapter_from else None,
                        top_layers=top_layers or None, backend=backend)
    for task, scores in card["metrics"].items():
        click.echo(f"{task}: " + ", ".join(f"{k} {v}" for k, v in scores.items()))


@click.command("train-intents")
@click.option("--rules", "rules_file", help=RULES_HELP)
@click.option("--data", "data_file", type=click.Path(exists=True, dir_okay=False),
              help="Training set (default: pipeline/models/data/intent_category_severity.jsonl).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Where to write the heads (default: pipeline/models/heads_extra, the shipped ones).")
@click.option("--c", "c_grid", type=float, multiple=True,
              help="Only try this regularisation C (repeatable; default: the full grid the shipped heads used).")
@click.option("--cue-weight", "cue_weights", type=float, multiple=True,
              help="Only try this weight of the cue features (repeatable; default: the full grid).")
def train_intents(rules_file, data_file, out, c_grid, cue_weights):
    """Retrain the intent, complaint category and severity heads; writes a model card.

    \b
    Example:
      ecoute train-intents --out my-intent-heads   # then models.intent_heads: my-intent-heads
    """
    from pipeline.models.intents import EXTRA_HEADS_DIR, TRAINING_FILE
    from pipeline.models.train_labels import C_GRID, CUE_WEIGHTS
    from pipeline.models.train_labels import train as run_training

    logging.getLogger().setLevel(logging.INFO)
    card = run_training(open_rules(rules_file), Path(data_file) if data_file else TRAINING_FILE,
                        Path(out) if out else EXTRA_HEADS_DIR, tuple(c_grid) or C_GRID, tuple(cue_weights) or CUE_WEIGHTS)
    for task, scores in card["metrics"].items():
        click.echo(f"{task}: " + ", ".join(f"{k} {v}" for k, v in scores.items()))


COMMANDS = (bench, train, train_intents)
