"""Runs one pytest file as a Bazel py_test.

Usage (set up by the root BUILD file): bazel_pytest_main.py tests/test_x.py

Bazel starts a test in its runfiles tree, where the repository's declared
sources and data sit under their usual relative paths. This runner makes that
tree look like a checkout to the tests: it is the working directory, it is on
sys.path (and on PYTHONPATH for subprocesses such as `python3 -m tfgt.train`),
and pytest writes its temporary files under Bazel's per-test TEST_TMPDIR.
The process exits with pytest's exit code (0 passed, 5 no test collected, ...).
"""

import os
import sys

import pytest


def _runfiles_root() -> str:
  """Directory that holds this repository's files in the runfiles tree."""
  # Bazel sets TEST_SRCDIR to the runfiles directory and TEST_WORKSPACE to
  # the workspace name; the repository's files live in their join.
  srcdir = os.environ.get("TEST_SRCDIR")
  workspace = os.environ.get("TEST_WORKSPACE")
  if srcdir and workspace:
    root = os.path.join(srcdir, workspace)
    if os.path.isdir(root):
      return root
  # Outside `bazel test` (e.g. `python3 tests/bazel_pytest_main.py ...` in a
  # checkout), the runner sits in tests/ of the repository. abspath, not
  # realpath: in a runfiles tree the file is a symlink into the source tree.
  return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pytest_args(test_file: str, root: str) -> list[str]:
  """pytest command line for one test file, honouring Bazel's test flags."""
  args = [test_file, "-q", "-p", "no:cacheprovider", "--rootdir", root]
  tmpdir = os.environ.get("TEST_TMPDIR")
  if tmpdir:
    args.append("--basetemp=" + os.path.join(tmpdir, "pytest"))
  # `bazel test --test_filter=EXPR` selects test functions like `pytest -k`.
  test_filter = os.environ.get("TESTBRIDGE_TEST_ONLY")
  if test_filter:
    args += ["-k", test_filter]
  # Per-test-case results for Bazel's test.xml instead of one pass/fail.
  xml_file = os.environ.get("XML_OUTPUT_FILE")
  if xml_file:
    args.append("--junitxml=" + xml_file)
  return args


def main(argv: list[str]) -> int:
  if len(argv) != 2:
    sys.stderr.write(f"usage: {argv[0]} tests/test_FILE.py\n")
    return 2
  root = _runfiles_root()
  os.chdir(root)
  if root not in sys.path:
    sys.path.insert(0, root)
  pythonpath = os.environ.get("PYTHONPATH")
  os.environ["PYTHONPATH"] = (root + os.pathsep + pythonpath if pythonpath
                              else root)
  return int(pytest.main(pytest_args(argv[1], root)))


if __name__ == "__main__":
  sys.exit(main(sys.argv))
