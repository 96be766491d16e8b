"""tools/ is a package of commands run as `python -m tools.<name>`: every
module imports, none edits the import path, their imports form no circle,
tfgt never imports them, and the documented commands name modules that
exist."""

import ast
import glob
import importlib
import importlib.util
import os
import pkgutil
import re

import tools
from tests.conftest import REPO


def _sources(folder: str) -> dict[str, str]:
  """{module name: source} of every .py file under REPO/<folder>."""
  out = {}
  for path in sorted(glob.glob(os.path.join(REPO, folder, "**", "*.py"),
                               recursive=True)):
    name = os.path.relpath(path, REPO)[:-len(".py")].replace(os.sep, ".")
    with open(path, encoding="utf-8") as f:
      out[name.removesuffix(".__init__")] = f.read()
  return out


def _is_module(name: str) -> bool:
  try:
    return importlib.util.find_spec(name) is not None
  except ModuleNotFoundError:
    return False


def _is_package(module: str) -> bool:
  return os.path.isdir(os.path.join(REPO, *module.split(".")))


def _imported(module: str, source: str) -> set[str]:
  """The modules `source` (of `module`) imports anywhere, also inside
  functions, by full name; `from tools import x` counts as tools.x when
  that is a module."""
  package = module if _is_package(module) else module.rpartition(".")[0]
  found = set()
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        parent = package.rsplit(".", node.level - 1)[0]
        base = f"{parent}.{base}" if base else parent
      for alias in node.names:
        full = f"{base}.{alias.name}"
        found.add(full if (base == "tools" or base.startswith("tools.")) and
                  _is_module(full) else base)
  return found


def _tools_graph() -> dict[str, set[str]]:
  """{tools module: the tools modules it imports}."""
  return {module: {m for m in _imported(module, source)
                   if m == "tools" or m.startswith("tools.")}
          for module, source in _sources("tools").items()}


def test_no_tool_edits_the_import_path_and_tfgt_never_imports_tools():
  for module, source in _sources("tools").items():
    assert "sys.path" not in source, module
    assert "PYTHONPATH" not in source, module
  for module, source in _sources("tfgt").items():
    imports = _imported(module, source)
    assert not [m for m in imports if m == "tools" or
                m.startswith("tools.")], module
    assert not re.search(r"""import_module\(\s*f?["']tools""", source), module


def test_every_tools_module_imports():
  names = {m.name for m in pkgutil.walk_packages(tools.__path__, "tools.")}
  # Every file is a module of the package (no folder lacks __init__.py).
  assert names | {"tools"} == set(_sources("tools"))
  assert {"tools.benchmark_transfer", "tools.benchlib.runs",
          "tools.machine"} <= names
  for name in sorted(names):
    importlib.import_module(name)


def test_the_import_graph_of_tools_has_no_circle():
  graph = _tools_graph()
  # The parser sees imports at the top and inside functions.
  assert {"tools.benchlib.figures"} <= graph["tools.plot_curves"]
  assert "tools.benchlib.measures" in graph["tools.benchlib.runs"]
  assert "tools.benchmark_step" in graph["tools.benchmark_workers"]
  done, path = set(), []

  def visit(module):
    if module in path:
      raise AssertionError("An import circle: " + " -> ".join(
          path[path.index(module):] + [module]))
    if module in done:
      return
    path.append(module)
    for other in sorted(graph.get(module, ())):
      visit(other)
    path.pop()
    done.add(module)

  for module in sorted(graph):
    visit(module)


def _documents() -> dict[str, str]:
  """{path: text} of the files that tell users to run a tool."""
  patterns = ["README.md", "Makefile", "BUILD", ".ci/*", "docs/**/*.md",
              "docs/**/*.ipynb", "gin_configs/**/*.gin", "tools/**/*.py",
              "tools/*.sh", "tfgt/**/*.py", "tfgt/**/*.md", "tfgt/**/*.json",
              "tests/**/*.py"]
  out = {}
  for pattern in patterns:
    for path in glob.glob(os.path.join(REPO, pattern), recursive=True):
      if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
          out[os.path.relpath(path, REPO)] = f.read()
  return out


def test_documented_commands_run_tools_as_modules():
  documents = _documents()
  assert "README.md" in documents and "docs/RESULTS.md" in documents
  for path, text in documents.items():
    assert not re.search(r"python3?\s+tools/\w+\.py", text), path
    for name in re.findall(r"-m\s+(tools\.[\w.]*\w)", text):
      assert _is_module(name), (path, name)
