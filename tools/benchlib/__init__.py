"""What the benchmarks of runs over seeds share.

`tools.benchmark_transfer`, `tools.benchmark_recall` and
`tools.benchmark_hypermod` each define their cells, claims and flags; the
rest is here, one concern a module:

  cells      a run of a benchmark (`Cell`), its config and gin bindings
  cli        the shared flags, input checks, exit codes, own command line
  processes  cells in child processes, `--jobs` at a time
  runs       one cell trained, resumed or read back, and scored
  records    finished rows: where they are kept, when one counts as done
  measures   the scores a benchmark adds to a finished run
  rows       the values a report reads from a row
  stats      mean ± std over seeds, paired comparisons
  report     the Markdown tables, results files and curves
  figures    curves over seeds as pictures
"""
