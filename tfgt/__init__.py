"""tfgt: transfer pretrained GANs to new classes from a few images.

From Python (docs/API.md; each name is imported on first use, so that
`import tfgt` stays as quick as before and the command lines start as fast):

  load(path, checkpoint="latest") -> Generator   a run folder, bundle or
                                                 "pretrained:NAME"
  Generator.draw / .interpolate                  NumPy images, the same as
                                                 `python -m tfgt.sample`
  grid(images, columns), save_png(image, path)   the picture tfgt.sample writes
  train(gin_files, bindings, model_dir=...) -> Run
  Run(model_dir): .generator(), .scores(), .best(), .steps(),
                  .score_heatmaps()
  evaluate(path_or_generator, ...) -> Evaluation
  export(path_or_generator, out) -> the SavedModel's version folder
  import_source(source_format, input_path, out) -> Generator
  UserInputError                                 what every one of them raises
                                                 for bad input

`tfgt.train`, `tfgt.evaluate`, `tfgt.export` and `tfgt.import_source` are also
the modules of the command lines (`python -m tfgt.train`, and
`from tfgt import train as train_lib` in the library): calling one of these
modules calls the function of the same name in `tfgt.api`.

Sub-packages:
  layers:  Keras 3 layers (spectral norm, conditional batch norm, attention).
  models:  generators and discriminators built from the layers (BigGAN).
  methods: transfer methods; each turns a source model into a target model.
  data:    tf.data pipelines (Fashion-MNIST IDX files, image folders, TFDS).
  eval:    feature extractors and sample-quality metrics.
"""

import sys
import types

__version__ = "0.1.0"

__all__ = ["load", "Generator", "Run", "Evaluation", "train", "evaluate",
           "export", "import_source", "grid", "save_png", "UserInputError"]

# Names defined in tfgt.api (which imports TensorFlow): imported on first use.
_API_NAMES = ("load", "Generator", "Run", "Evaluation", "grid", "save_png")
# Modules of the command lines that are also API functions.
_COMMANDS = ("train", "evaluate", "export", "import_source")


class _Command(types.ModuleType):
  """A command line's module (tfgt.train, tfgt.evaluate, tfgt.export,
  tfgt.import_source) that is also the API function of its name: calling it
  calls `tfgt.api.<name>`; its attributes are the module's, as before."""

  def __call__(self, *args, **kwargs):
    from tfgt import api  # pylint: disable=g-import-not-at-top
    return getattr(api, self.__name__.rpartition(".")[2])(*args, **kwargs)


class _Package(types.ModuleType):
  """The package module: makes each command module callable (`_Command`) when
  the import system sets it as the package's attribute, however it is first
  imported (`import tfgt.export`, `from tfgt import export`, `tfgt.export`)."""

  def __setattr__(self, name, value):
    if name in _COMMANDS and type(value) is types.ModuleType:  # pylint: disable=unidiomatic-typecheck
      value.__class__ = _Command
    super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name):
  if name in _API_NAMES:
    from tfgt import api  # pylint: disable=g-import-not-at-top
    value = getattr(api, name)
    globals()[name] = value
    return value
  if name == "UserInputError":
    from tfgt.errors import UserInputError  # pylint: disable=g-import-not-at-top
    return UserInputError
  if name in _COMMANDS:
    # The import sets the attribute (through `_Package.__setattr__`).
    __import__(f"{__name__}.{name}")
    return sys.modules[f"{__name__}.{name}"]
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
  return sorted(set(globals()) | set(__all__))
