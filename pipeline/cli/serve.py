"""The dashboard: `ecoute demo` (the demo store, then the dashboard) and `ecoute dashboard`.
Each command imports what it runs inside its body, so that `ecoute --help` does not wait for torch."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import click

from pipeline.cli.common import DB_HELP, RULES_HELP, load_models, open_rules, open_store
from pipeline.rules import rules_path


@click.command()
@click.option("--db", default="ecoute-demo.db", show_default=True, help=DB_HELP)
@click.option("--rules", "rules_file", help=RULES_HELP)
@click.option("--port", default=8501, show_default=True, help="Dashboard port.")
@click.option("--no-dashboard", is_flag=True, help="Load and classify the demo, then exit.")
def demo(db, rules_file, port, no_dashboard):
    """Load the bundled demo mentions (two fictional brands, EN and FR), classify them, open the dashboard.

    \b
    Example:
      ecoute demo --port 8502
    """
    from pipeline.alerts.detection import after_classification
    from pipeline.jobs import load_demo

    rules = open_rules(rules_file)
    load_models(rules)
    store = open_store(db)
    count, classified, queued = load_demo(store, rules)
    click.echo(f"demo: {count} mentions in {store.url}, {classified} newly classified, {queued} added to the queue")
    after_classification(store, rules, click.echo)
    if not no_dashboard:
        run_dashboard(store.url, str(rules_path(rules_file)), port, "127.0.0.1")


@click.command()
@click.option("--db", help=DB_HELP)
@click.option("--rules", "rules_file", help=RULES_HELP)
@click.option("--port", default=8501, show_default=True, help="Port to serve on.")
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Address to bind. Only a loopback address while the store has no users (no sign-in).")
def dashboard(db, rules_file, port, address):
    """Serve the dashboard (queue and trends) on the configured store.

    \b
    Example:
      ecoute dashboard --db team.db --port 8080
    """
    from pipeline.store import database_url
    from pipeline.desk.users import has_users, is_loopback

    open_rules(rules_file)
    if not is_loopback(address) and not has_users(open_store(db)):   # no sign-in: everyone reached would be admin
        raise click.ClickException(
            f"the store has no users, so the dashboard has no sign-in and may only listen on 127.0.0.1, not "
            f"{address or 'every interface'}; run `ecoute users add NAME --role admin` first, then everyone signs in")
    run_dashboard(database_url(db), str(rules_path(rules_file)), port, address)


def run_dashboard(db_url: str, rules_file: str, port: int, address: str) -> None:
    """Streamlit on dashboard.py, in a child process, until Ctrl+C; exits with its status."""
    spec = importlib.util.find_spec("dashboard")
    if spec is None or spec.origin is None:
        raise click.ClickException("dashboard.py not found; install Écoute with `pip install -e .`")
    env = {**os.environ, "ECOUTE_DB": db_url, "ECOUTE_RULES": str(Path(rules_file).resolve())}
    command = [sys.executable, "-m", "streamlit", "run", spec.origin, "--server.headless", "true",
               "--server.port", str(port), "--server.address", address, "--browser.gatherUsageStats", "false"]
    click.echo(f"dashboard on http://{address}:{port} (Ctrl+C to stop)")
    try:
        sys.exit(subprocess.call(command, env=env))
    except KeyboardInterrupt:
        pass


COMMANDS = (demo, dashboard)
