"""The set-up shared by the methods that transfer only BN parameters.

cGANTransfer (Shahbazi et al., CVPR 2021) and its BSA baseline (the paper's
Fig. 1b) start alike: the source generator becomes a
`tfgt.models.transfer_generator.KnowledgeTransferGenerator` whose new classes
get their own conditional-BN rows (propagated from the old classes, or
independent), the discriminator is the source's with M new projection rows,
and the trained generator folds into a plain BigGAN for N + M classes. They
differ in how new rows are made, what trains and which regularisers apply;
those choices stay in `tfgt.methods.cgantransfer` and `tfgt.methods.bsa`.
"""

from __future__ import annotations

from tfgt import objectives
from tfgt.errors import UserInputError
from tfgt.methods import base
from tfgt.methods import source as source_lib
from tfgt.models import biggan
from tfgt.models import transfer_generator as tg


def build_transfer_models(method: source_lib.TransferMethod,
                          class_names: list[str], new_class_rows: str,
                          d_new_rows: str, row_init: str = "mean",
                          **generator_kwargs
                          ) -> tuple[tg.KnowledgeTransferGenerator,
                                     biggan.BigGANDiscriminator]:
  """The method's source as a transfer generator and an extended D.

  Args:
    method: gives the source (`load_source`).
    class_names: all N + M class names, the source's N first.
    new_class_rows: "propagated" (cGANTransfer) or "independent" (BSA).
    d_new_rows: initial projection rows of the new classes in D
      (`tfgt.models.weights.NEW_ROW_INITS`).
    row_init: start of independent rows (see
      `KnowledgeTransferGenerator.load_source`).
    **generator_kwargs: further `KnowledgeTransferGenerator` options.

  Returns:
    (generator for N + M classes with the source weights, discriminator with
    M new projection rows).

  Raises:
    UserInputError: a missing source, one that is not a BigGAN, no new
      class or an unknown d_new_rows (see `TransferMethod.load_source`).
    ValueError: class names that do not start with the source's.
  """
  src, num_new = method.load_source(class_names)
  if src.generator.architecture != "biggan":
    raise UserInputError(
        f"{type(method).__name__} transfers the class-conditional BN "
        f"parameters of a BigGAN, and {method.source!r} is a "
        f"{src.generator.architecture}: CGANTransfer, TransferGAN and FreezeD "
        "take a class-conditional StyleGAN2, HyperModulation and GANMemory an "
        "unconditional StyleGAN (docs/CGANTRANSFER.md).")
  num_old = len(src.class_names)
  generator = tg.KnowledgeTransferGenerator(
      num_old, num_new, new_class_rows, **generator_kwargs,
      **src.generator.ctor_kwargs)
  generator.load_source(src.generator, row_init=row_init)
  discriminator = source_lib.extend_discriminator(
      src.discriminator, num_old + num_new, d_new_rows)
  return generator, discriminator


def tuned_noise_projections(generator: tg.KnowledgeTransferGenerator,
                            tune: bool | None) -> list:
  """The noise-to-BN projection kernels to train, if any.

  `tune` None follows the paper (5.1): train them iff the source has a
  shared embedding and hierarchical z.
  """
  if tune is None:
    tune = (generator.conditioning == "shared_embedding" and
            generator.hierarchical_z)
  return generator.noise_projection_variables() if tune else []


def make_setup(generator, discriminator, g_variables: list,
               class_names: list[str],
               objective: objectives.Objective | None = None,
               fold_generator=tg.fold_generator) -> base.GANSetup:
  """A GANSetup whose clone and fold know the transfer generator.

  Args:
    generator: a transfer generator (`KnowledgeTransferGenerator`, or
      `StyleGAN2TransferGenerator` with its `fold_generator`).
    discriminator: trains entirely.
    g_variables: the generator variables that train.
    class_names: all N + M names.
    objective: None is `objectives.Adversarial()`.
    fold_generator: fold(generator, into=None) -> the plain generator.
  """
  cache = {}

  def fold(g):
    # The trainer folds its EMA generator at every save; refill one model
    # rather than building a new one each time.
    result = fold_generator(g, into=cache.get(id(g)))
    cache[id(g)] = result
    return result

  return base.GANSetup(
      generator, discriminator, g_variables,
      discriminator.trainable_variables, list(class_names),
      objective=objective, clone_generator=generator.clone, fold=fold)
