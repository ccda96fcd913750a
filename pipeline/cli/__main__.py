"""`python -m pipeline.cli`, as the `ecoute` script."""
from pipeline.cli import main

main()
