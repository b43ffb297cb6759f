"""`python -m delift_dvc` = the `delift-dvc` command."""

from .cli import main

main()
