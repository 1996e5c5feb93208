"""coffeetrace's benchmarks: a distribution of their own (`coffeetrace-bench`, this folder),
installed beside the product from the repository, never shipped in it.

Each module measures one part against a ceiling taken in the same run and prints one
final JSON line: ingest.py (`coffeetrace bench ingest`), ingest_flood.py (`bench
ingest-flood`), trace.py (`bench trace`), page.py (`bench page`), seed.py (`bench seed`).
cli.py adds them to the `coffeetrace` command through the `coffeetrace.commands` entry
point group; their SQL is in sql/*.sql. The product never imports this package.
"""
