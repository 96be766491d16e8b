"""The import graph of tfgt: no circle, and helpers that several
architectures or methods share live in modules that import none of them.

Imports are read from the source (also those inside functions), so a rule
breaks here as soon as a module names the import, whether or not a test
runs that line.
"""

import ast
import glob
import os

from tests.conftest import REPO
from tfgt.methods import hypermod as hypermod_methods
from tfgt.methods import source as source_lib

# The modules of one architecture or one method (BigGAN, cGANTransfer's
# layers and generator, StyleGAN, the hyper-modulated StyleGAN).
ARCHITECTURE_MODULES = frozenset({
    "tfgt.models.biggan", "tfgt.models.stylegan", "tfgt.models.hypermod",
    "tfgt.models.transfer_generator", "tfgt.layers.knowledge_transfer"})
CGANTRANSFER_MODULES = frozenset({
    "tfgt.models.biggan", "tfgt.models.transfer_generator",
    "tfgt.layers.knowledge_transfer", "tfgt.methods.cgantransfer",
    "tfgt.methods.bsa", "tfgt.methods.bn_transfer"})


def _sources() -> dict[str, str]:
  """{module name: source} of every module of tfgt/ (a package by its
  name, without `.__init__`)."""
  out = {}
  for path in sorted(glob.glob(os.path.join(REPO, "tfgt", "**", "*.py"),
                               recursive=True)):
    name = os.path.relpath(path, REPO)[:-len(".py")].replace(os.sep, ".")
    with open(path, encoding="utf-8") as f:
      out[name.removesuffix(".__init__")] = f.read()
  return out


SOURCES = _sources()


def _imports(module: str) -> set[str]:
  """The tfgt modules that `module` imports anywhere in its source: `from
  tfgt.a import b` counts as tfgt.a.b when that is a module, else tfgt.a."""
  found = set()
  for node in ast.walk(ast.parse(SOURCES[module])):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      for alias in node.names:
        full = f"{node.module}.{alias.name}"
        found.add(full if full in SOURCES else node.module)
  return {m for m in found if m in SOURCES}


GRAPH = {module: _imports(module) for module in SOURCES}


def _reachable(module: str) -> set[str]:
  """Every tfgt module that importing `module` imports, directly or not
  (package `__init__`s aside: each names its own imports)."""
  seen, todo = set(), [module]
  while todo:
    for imported in GRAPH[todo.pop()]:
      if imported not in seen:
        seen.add(imported)
        todo.append(imported)
  return seen


def test_the_import_graph_of_tfgt_has_no_circle():
  state = {}  # module -> "open" while its imports are followed, then "done"

  def visit(module, path):
    state[module] = "open"
    for imported in sorted(GRAPH[module]):
      assert state.get(imported) != "open", " -> ".join(
          path + [module, imported])
      if imported not in state:
        visit(imported, path + [module])
    state[module] = "done"

  for module in sorted(GRAPH):
    if module not in state:
      visit(module, [])


def test_class_lookup_is_shared_by_the_data_modules_one_way():
  assert "tfgt.data.sources" in GRAPH["tfgt.data.pipeline"]
  assert "tfgt.data.pipeline" not in _reachable("tfgt.data.sources")
  for module in ("tfgt.data.sources", "tfgt.data.pipeline", "tfgt.sample",
                 "tfgt.api"):
    assert "tfgt.data.class_lookup" in GRAPH[module], module
  assert not GRAPH["tfgt.data.class_lookup"] - {"tfgt.errors"}


def test_shared_helpers_import_no_architecture_and_no_method():
  for module in ("tfgt.models.weights", "tfgt.models.inputs",
                 "tfgt.models.architectures", "tfgt.data.class_lookup"):
    reached = _reachable(module)
    assert not reached & ARCHITECTURE_MODULES, module
    assert not [m for m in reached if m.startswith("tfgt.methods")], module
  # The source loader of every transfer method sees models only through the
  # architecture contract.
  assert not _reachable("tfgt.methods.source") & ARCHITECTURE_MODULES


def test_hyper_modulation_imports_nothing_of_cgantransfer():
  for module in ("tfgt.methods.hypermod", "tfgt.models.hypermod"):
    assert not _reachable(module) & CGANTRANSFER_MODULES, module


def test_hyper_modulation_loads_its_source_as_every_transfer_method():
  for cls in (hypermod_methods.HyperModulation, hypermod_methods.GANMemory):
    assert issubclass(cls, source_lib.TransferMethod)
    for name in ("load_source", "source_info"):
      assert getattr(cls, name) is getattr(source_lib.TransferMethod, name)


def test_the_evaluator_is_given_its_data():
  # The data's gin bindings are read by the data module
  # (`pipeline.configured_data`), never by the evaluator.
  source = SOURCES["tfgt.eval.evaluator"]
  for text in ("gin.query_parameter", "gin.get_bindings",
               "load_training_data("):
    assert text not in source, text
