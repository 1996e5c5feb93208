"""`python -m coffeetrace`: the same as the `coffeetrace` command (part of the root)."""

from coffeetrace.cli import main

main()
