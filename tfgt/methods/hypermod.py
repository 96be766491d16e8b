"""Hyper-Modulation (Laria et al., CVPRW 2022) and GAN Memory (Cong et al.,
NeurIPS 2020): an unconditional StyleGAN becomes class-conditional.

Two stages, one trainer (docs/HYPERMOD.md):

  `SelfAlignment` (section 3.3, eq. 6): no discriminator and no real data.
      The generator (`tfgt.models.hypermod.HyperModGenerator`) holds the
      frozen source; its unmodulated synthesis is the teacher. For the same
      w and noise, the loss is the sum over the synthesis blocks of the mean
      L1 distance between the modulated and the source outputs
      (`SelfAlignmentLoss`). The class network and the modulators train.
  `HyperModulation` (sections 3.2, 3.4): the conditional GAN on the target
      classes, from an aligned run (its class embedding copied to every
      class), from no alignment (the ablation of Fig. 7d), or with free
      per-class parameters (`mode="free"`: GAN Memory, which starts as the
      source exactly and needs no alignment).

The source must be an unconditional StyleGAN or StyleGAN2 bundle (one
class), such as `pretrained:fashion_mnist_stylegan`; a StyleGAN2 source
gives `hypermod.HyperModStyleGAN2Generator` (docs/STYLEGAN2.md).
"""

from __future__ import annotations

from absl import logging
import gin
import keras
import numpy as np
import tensorflow as tf

from tfgt import objectives
from tfgt import precision
from tfgt import run_folder
from tfgt.errors import UserInputError
from tfgt.methods import base
from tfgt.layers import hypernetwork
from tfgt.methods import source as source_lib
from tfgt.models import bundle
from tfgt.models import hypermod
from tfgt.models import weights


def _count(variables) -> int:
  return int(sum(np.prod(v.shape) for v in variables))


def check_stylegan_source(src: source_lib.SourceModel, path: str) -> None:
  """Refuses a source that is not an unconditional StyleGAN or StyleGAN2.

  Args:
    src: the loaded source bundle.
    path: where it was loaded from, as the config names it (for messages).

  Raises:
    UserInputError: a source of another architecture or with more than one
      class.
  """
  g = src.generator
  if not isinstance(g, hypermod.SOURCE_GENERATORS) or g.num_classes != 1:
    raise UserInputError(
        f"Hyper-Modulation starts from an unconditional StyleGAN or "
        f"StyleGAN2; {path!r} "
        f"holds a {getattr(g, 'architecture', type(g).__name__)} generator "
        f"with {g.num_classes} classes. Use a StyleGAN trained on one "
        "(merged) class, such as 'pretrained:fashion_mnist_stylegan'.")


def load_stylegan_source(path: str, checkpoint: str | int = "latest"
                         ) -> source_lib.SourceModel:
  """The source bundle at `path`, checked to be an unconditional StyleGAN.

  Raises:
    UserInputError: no bundle there, or one of another kind.
  """
  src = source_lib.load(path, checkpoint)
  check_stylegan_source(src, path)
  return src


def copy_source(source: keras.Model,
                generator: hypermod.HyperModGenerator) -> None:
  """Copies the source StyleGAN(2)'s weights into `generator.source` and sets
  the free parameters to match it (`match_source`)."""
  targets = generator.source.variables
  if len(targets) != len(source.variables):
    raise ValueError(f"The source StyleGAN has {len(source.variables)} "
                     f"variables, the generator's {len(targets)}.")
  for target, value in zip(targets, source.variables):
    name = weights.relative_path(value)
    if (not weights.relative_path(target).endswith(name) or
        tuple(target.shape) != tuple(value.shape)):
      raise ValueError(f"The source StyleGAN does not fit the generator at "
                       f"{name} {tuple(value.shape)}.")
    target.assign(value)
  generator.match_source()


def hypernetwork_variables(generator: hypermod.HyperModGenerator
                           ) -> tuple[list, list]:
  """(class network C's variables, the modulators' or free parameters')."""
  c = ([] if generator.class_network is None
       else list(generator.class_network.trainable_variables))
  mods = [v for _, mod in generator.modulated_layers
          for v in mod.trainable_variables]
  return c, mods


@gin.configurable
class SelfAlignmentLoss(objectives.Objective):
  """Self-alignment (Hyper-Modulation eq. 6), a generator-only objective.

  For the step's latents z_g and classes y_g: w from the frozen mapping
  network (`w_avg` left alone), the noise of z, then sum over the synthesis
  blocks b of mean |G_b(w, y) - S_b(w)|, with S the unmodulated source
  synthesis inside G (the teacher) and the mean over a block's pixels and
  channels. The parts name each block (`block_8x8`, ...) and the sum
  (`l1`).

  Args:
    style_mixing: mix styles as in training (the source's
      `style_mixing_prob`); False (the official alignment command, which
      runs without `--mixing`) aligns unmixed w only.
  """

  def __init__(self, style_mixing: bool = False):
    self.style_mixing = bool(style_mixing)

  @property
  def xla_blocker(self) -> str | None:
    return "the per-class convolution's tf.dynamic_partition"

  def g_loss(self, batch, generator, discriminator):
    del discriminator
    z = batch.z_g
    source = generator.source
    zeros = tf.zeros(tf.shape(z)[:1], tf.int32)
    ws, noise = source.styles(z, zeros, training=self.style_mixing,
                              update_w_avg=False)
    if noise is None:
      noise = source.synthesis_noise(z)
    _, teacher = source.synthesize(ws, z, training=True, return_blocks=True,
                                   noise=noise)
    _, student = generator.synthesize(ws, z, batch.y_g, training=True,
                                      return_blocks=True, noise=noise)
    parts = {}
    total = None
    for t, s in zip(teacher, student):
      # Float32 under every precision (`tfgt.precision`): a loss.
      t, s = precision.float32(t), precision.float32(s)
      per_example = tf.reduce_mean(tf.abs(s - tf.stop_gradient(t)),
                                   axis=[1, 2, 3])
      size = t.shape[1]
      parts[f"block_{size}x{size}"] = batch.mean(per_example)
      total = per_example if total is None else total + per_example
    parts["l1"] = batch.mean(total)
    return parts["l1"], parts


def _make(cls: type, *args, **kwargs):
  """cls(*args, **kwargs), an option it refuses as a UserInputError."""
  try:
    return cls(*args, **kwargs)
  except ValueError as e:
    raise UserInputError(f"{e} (a HyperModulation / SelfAlignment "
                         "setting for this source)") from e


def _generator(num_classes: int, source: keras.Model,
               options: dict) -> hypermod.HyperModGenerator:
  generator_class, _ = hypermod.classes_for(source)
  generator = _make(generator_class, num_classes, source.ctor_kwargs,
                    **options)
  generator.build()
  copy_source(source, generator)
  return generator


def _check_scale(name: str, value: float) -> None:
  if not value > 0:
    raise UserInputError(f"{name} must be > 0, got {value}.")


def _check_options(owner: str, scale: str, fused_modulation: str) -> None:
  if scale not in hypernetwork.SCALES:
    raise UserInputError(f"{owner}.scale must be one of "
                         f"{hypernetwork.SCALES}, got {scale!r}.")
  if fused_modulation not in hypermod.FUSED_MODULATION:
    raise UserInputError(f"{owner}.fused_modulation must be one of "
                         f"{hypermod.FUSED_MODULATION}, got "
                         f"{fused_modulation!r}.")


@gin.configurable
class SelfAlignment(base.Method):
  """Stage 1 of Hyper-Modulation: align the modulated generator with its
  source (paper 3.3). No discriminator; the classes of the run are those of
  its data (the source's merged class, so that the evaluation compares the
  aligned generator with the source's own images).

  Args:
    source: the unconditional StyleGAN bundle (folder, run model_dir or
      "pretrained:NAME").
    checkpoint: "latest", "best" or a step of that bundle.
    class_width, class_depth, modulator_hidden, bias, scale,
      fused_modulation: the hypernetwork (`HyperModGenerator`); the
      transfer stage takes them from this run.
    class_network_lr_scale: C's learning rate over the modulators' (the
      official code: 2e-5 / 2e-3).
    style_mixing: `SelfAlignmentLoss.style_mixing`.

  Raises:
    UserInputError: a learning-rate scale <= 0, or a source that is not an
      unconditional StyleGAN.
  """

  name = "hypermod_align"

  def __init__(self, source: str = gin.REQUIRED,
               checkpoint: str | int = "latest", class_width: int = 64,
               class_depth: int = 4, modulator_hidden: int | None = None,
               bias: str = "shift", scale: str = "official",
               fused_modulation: str = "auto",
               class_network_lr_scale: float = 0.01,
               style_mixing: bool = False):
    _check_scale("SelfAlignment.class_network_lr_scale",
                 class_network_lr_scale)
    _check_options("SelfAlignment", scale, fused_modulation)
    self.source = source
    self.checkpoint = bundle.parse_checkpoint(checkpoint,
                                              "SelfAlignment.checkpoint")
    self.options = dict(mode="hypernetwork", class_width=class_width,
                        class_depth=class_depth,
                        modulator_hidden=modulator_hidden, bias=bias,
                        scale=scale, fused_modulation=fused_modulation)
    self.class_network_lr_scale = class_network_lr_scale
    self.style_mixing = style_mixing

  def source_info(self) -> base.SourceInfo:
    info, _ = source_lib.read_info(self.source)
    return base.SourceInfo([], info.resolution, info.channels)

  def build(self, class_names: list[str]) -> base.GANSetup:
    src = load_stylegan_source(self.source, self.checkpoint)
    generator = _generator(len(class_names), src.generator, self.options)
    c, mods = hypernetwork_variables(generator)
    logging.info("%s: %d class-network and %d modulator values.", self.name,
                 _count(c), _count(mods))
    return base.GANSetup(
        generator, None,
        [base.VariableGroup("modulators", mods),
         base.VariableGroup("class_network", c,
                            learning_rate_scale=self.class_network_lr_scale)],
        [], list(class_names),
        objective=SelfAlignmentLoss(style_mixing=self.style_mixing))


def load_aligned(path: str, source: keras.Model,
                 raw: bool = False) -> hypermod.HyperModGenerator:
  """The generator of a self-alignment run (or bundle) at `path`, checked
  to modulate the same source with a hypernetwork: its EMA (the bundle), or
  with `raw` its trained weights (the run's newest training checkpoint).

  Raises:
    UserInputError: no bundle there, another generator or source, or `raw`
      asked of a bundle without its run.
  """
  directory = bundle.resolve_directory(path)
  try:
    generator, _, _ = bundle.load(directory)
  except UserInputError as e:
    raise UserInputError(
        f"No aligned generator at {path!r}: {e} Run the self-alignment "
        "stage (gin_configs/fashion_mnist/hypermod_align.gin) with that "
        "--model_dir first, or set HyperModulation.aligned = None.") from e
  if (not isinstance(generator, hypermod.HyperModGenerator)
      or generator.mode != "hypernetwork"):
    raise UserInputError(
        f"{path!r} holds no self-aligned hypernetwork (a "
        f"{getattr(generator, 'architecture', '?')} generator); give the "
        "model_dir of a SelfAlignment run.")
  if (not isinstance(generator, hypermod.classes_for(source)[0]) or
      generator.ctor_kwargs["source"] != source.ctor_kwargs):
    raise UserInputError(
        f"{path!r} was aligned on another source StyleGAN "
        f"({generator.ctor_kwargs['source']}) than this run's "
        f"({source.ctor_kwargs}). Align this source first.")
  if raw:
    class_names = bundle.read_spec(directory)["class_names"]
    try:
      run_folder.restore_models(path, class_names, generator=generator)
    except UserInputError as e:
      raise UserInputError(
          f"{e} The transfer starts from the aligned run's trained weights "
          "(HyperModulation.aligned_weights = 'raw'), which only its "
          "model_dir holds; give the run's model_dir, or set "
          "HyperModulation.aligned_weights = 'ema' to start from the "
          "bundle's average.") from e
  return generator


def conditional_discriminator(source_d: keras.Model, num_classes: int
                              ) -> keras.Model:
  """The source D (StyleGAN or StyleGAN2) with a new head of one output per
  class (read at the label): every other weight is the source's."""
  _, discriminator_class = hypermod.classes_for(source_d)
  d = discriminator_class(num_classes, **source_d.ctor_kwargs)
  d((tf.zeros([1, d.resolution, d.resolution, d.channels]),
     tf.zeros([1], tf.int32)), training=False)
  head = {weights.relative_path(v) for v in d.variables
          if weights.relative_path(v).startswith(d.head_prefix)}
  unmatched = weights.copy_weights(source_d, d, source_d.num_classes,
                                   skip=head)
  if unmatched:
    raise ValueError("Discriminator variables missing from the source: "
                     f"{[v.path for v in unmatched]}")
  return d


# The discriminator's class head (`head_prefix`) is new in the target; its
# from-RGB layer (`from_rgb_prefixes`) is frozen in Hyper-Modulation and
# GAN Memory (the official code's `freeze_layers`), trained in Hyper-Mod-FT
# and -S (the official code's `--finetune` freezes nothing in D; the paper:
# all parameters update).
# Which weights of the aligned run the transfer starts from: "raw" (the
# trained weights; the official code, whose alignment keeps no average) or
# "ema" (the run's exponential moving average, its bundle).
ALIGNED_WEIGHTS = ("raw", "ema")


@gin.configurable
class HyperModulation(source_lib.TransferMethod):
  """Hyper-Modulation's transfer (paper 3.2-3.4) and GAN Memory.

  The generator is the frozen source with per-class modulation of every
  synthesis convolution; the classes are the source's one class, then the
  M target classes. D is the source D with a new head of N + M outputs read
  at the label, its from-RGB layer frozen unless the source trains too
  (FT, S). Losses come from gin
  (`Adversarial`, non-saturating with R1 in the configs).

  Args:
    source: the unconditional StyleGAN bundle.
    checkpoint: of that bundle.
    mode: "hypernetwork" (Hyper-Modulation) or "free" (GAN Memory: every
      class starts as the source exactly).
    aligned: a SelfAlignment run's model_dir whose class network and
      modulators are the start (its first class embedding copied to every
      class); None starts the hypernetwork from random weights (the
      ablation without self-alignment). Ignored in "free" mode.
    aligned_weights: one of ALIGNED_WEIGHTS ("raw" needs the run's
      model_dir, not a bundle).
    class_width, class_depth, modulator_hidden, bias, scale,
      fused_modulation: the hypernetwork (`HyperModGenerator`); an aligned
      run must have the same.
    train_source: also train every weight of the source StyleGAN (mapping,
      synthesis, to-RGB) in a group "source" at the modulators' rate, with
      `w_avg` tracked, and D's from-RGB layer: Hyper-Mod-FT as the paper
      defines it (the official code leaves the source kernels and the
      mapping frozen).
    from_scratch: start the StyleGAN from random weights instead of the
      source's (Hyper-Mod-S); needs train_source and no aligned run. D too
      starts from random weights.
    objective: the losses; None: `objectives.Adversarial()` as gin binds
      it (`contrastive.ContrastiveAdversarial()`: the contrastive D, the
      paper's configuration C).
    class_network_lr_scale: C's learning rate over the modulators'. The
      official code's 2e-6 / 2e-3 (1e-3) leaves the classes' embeddings,
      which start equal (copied from the alignment), nearly equal: on
      Fashion-MNIST, with the official hypernetwork scale, every class drew
      the same images after 1500 steps (mFID 44.6 +- 0.9 over 3 seeds,
      path length 0.0 between the classes) where 1.0 reached 6.4 +- 1.5
      (`tools.benchmark_hypermod`, rows hypermod_b_official_lr and
      hypermod_b; docs/HYPERMOD.md).

  Raises:
    UserInputError: bad options, or a source or aligned run that does not
      fit.
  """

  name = "hypermod"

  def __init__(self, source: str = gin.REQUIRED,
               checkpoint: str | int = "latest", mode: str = "hypernetwork",
               aligned: str | None = None, aligned_weights: str = "raw",
               class_width: int = 64,
               class_depth: int = 4, modulator_hidden: int | None = None,
               bias: str = "shift", scale: str = "official",
               fused_modulation: str = "auto",
               class_network_lr_scale: float = 1.0,
               train_source: bool = False, from_scratch: bool = False,
               objective: objectives.Objective | None = None):
    if mode not in hypermod.MODES:
      raise UserInputError(f"HyperModulation.mode must be one of "
                           f"{hypermod.MODES}, got {mode!r}.")
    if from_scratch and (not train_source or aligned is not None):
      raise UserInputError(
          "HyperModulation.from_scratch (Hyper-Mod-S) trains the StyleGAN "
          "from random weights: set train_source = True and aligned = None.")
    _check_scale("HyperModulation.class_network_lr_scale",
                 class_network_lr_scale)
    _check_options("HyperModulation", scale, fused_modulation)
    if aligned_weights not in ALIGNED_WEIGHTS:
      raise UserInputError(f"HyperModulation.aligned_weights must be one of "
                           f"{ALIGNED_WEIGHTS}, got {aligned_weights!r}.")
    self.aligned_weights = aligned_weights
    super().__init__(source, checkpoint)
    self.mode = mode
    self.aligned = aligned if mode == "hypernetwork" else None
    self.options = dict(mode=mode, class_width=class_width,
                        class_depth=class_depth,
                        modulator_hidden=modulator_hidden, bias=bias,
                        scale=scale, fused_modulation=fused_modulation)
    self.class_network_lr_scale = class_network_lr_scale
    self.train_source = train_source
    self.from_scratch = from_scratch
    self.objective = objective

  def check_source(self, src: source_lib.SourceModel) -> None:
    """Refuses a source that is not an unconditional StyleGAN or StyleGAN2."""
    check_stylegan_source(src, self.source)

  def build(self, class_names: list[str]) -> base.GANSetup:
    src, num_new = self.load_source(class_names)
    num_old = len(src.class_names)
    aligned = None
    if self.aligned is not None:
      aligned = load_aligned(self.aligned, src.generator,
                             raw=self.aligned_weights == "raw")
      differ = {k: (aligned.ctor_kwargs[k], v) for k, v in self.options.items()
                if aligned.ctor_kwargs[k] != v}
      if differ:
        raise UserInputError(
            f"The aligned run {self.aligned!r} has another hypernetwork than "
            "this config asks for (" + "; ".join(
                f"{k}: {a!r} there, {b!r} here"
                for k, (a, b) in sorted(differ.items())) +
            "). Align with the same SelfAlignment settings, or set these "
            "HyperModulation settings to the aligned run's.")
    options = dict(self.options, track_w_avg=self.train_source)
    if self.from_scratch:
      generator_class, discriminator_class = hypermod.classes_for(
          src.generator)
      generator = _make(generator_class, len(class_names),
                        src.generator.ctor_kwargs, **options)
      discriminator = discriminator_class(len(class_names),
                                          **src.discriminator.ctor_kwargs)
      hypermod.build_models(generator, discriminator)
    else:
      generator = _generator(len(class_names), src.generator, options)
      discriminator = conditional_discriminator(src.discriminator,
                                                len(class_names))
    if aligned is not None:
      _start_from_aligned(aligned, generator)
    frozen = discriminator.from_rgb_prefixes
    d_variables = [v for v in discriminator.trainable_variables
                   if self.train_source or
                   not weights.relative_path(v).startswith(frozen)]
    c, mods = hypernetwork_variables(generator)
    groups = [base.VariableGroup("modulators", mods)]
    if c:
      groups.append(base.VariableGroup(
          "class_network", c,
          learning_rate_scale=self.class_network_lr_scale))
    if self.train_source:
      groups.append(base.VariableGroup(
          "source", list(generator.source.trainable_variables)))
    logging.info("%s: %d old + %d new classes; %d modulator, %d "
                 "class-network, %d source and %d D values train%s.",
                 self.name, num_old, num_new,
                 _count(mods), _count(c),
                 _count(generator.source.trainable_variables)
                 if self.train_source else 0, _count(d_variables),
                 f"; aligned by {self.aligned}" if aligned is not None
                 else "")
    return base.GANSetup(generator, discriminator, groups, d_variables,
                         list(class_names), objective=self.objective)


def _start_from_aligned(aligned: hypermod.HyperModGenerator,
                        generator: hypermod.HyperModGenerator) -> None:
  """Copies an aligned generator's hypernetwork into `generator`, its first
  class embedding into every class (paper 3.3)."""
  embedding = generator.class_network.embedding
  unmatched = weights.copy_weights(
      aligned, generator, aligned.num_classes,
      skip={weights.relative_path(embedding)})
  if unmatched:
    raise ValueError("Variables missing from the aligned generator: "
                     f"{[v.path for v in unmatched]}")
  row = aligned.class_network.embedding[:1]
  embedding.assign(tf.tile(row, [generator.num_classes, 1]))


@gin.configurable
class GANMemory(HyperModulation):
  """GAN Memory (Cong et al., NeurIPS 2020; Hyper-Modulation's "No
  hypernet." row): free gamma, beta and bias shift per class and layer,
  starting at the source's sigma, mu and 0, so that every class starts as
  the source's images bit for bit; no self-alignment.

  Args:
    source, checkpoint, objective: as `HyperModulation`.
  """

  name = "gan_memory"

  def __init__(self, source: str = gin.REQUIRED,
               checkpoint: str | int = "latest",
               objective: objectives.Objective | None = None):
    super().__init__(source, checkpoint, mode="free", objective=objective)
