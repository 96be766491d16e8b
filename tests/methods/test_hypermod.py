"""Hyper-Modulation's generator and methods: GAN Memory's exact start, the
self-alignment loss, labels against class weights, every config, and both
stages through the trainer (alignment on 2 replicas), with sampling and
export, at tiny width."""

import json
import os
import shutil
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import FASHION_MNIST_DIR
from tests.conftest import REPO
from tests.conftest import assert_from_z_matches
from tests.conftest import events
from tests.conftest import load_tool
from tfgt import export as export_lib
from tfgt import objectives
from tfgt import sample as sample_lib
from tfgt import train as train_lib
from tfgt.data import pipeline
from tfgt.errors import UserInputError
from tfgt.layers import adafm
from tfgt.methods import contrastive
from tfgt.methods import hypermod as methods
from tfgt.models import architectures
from tfgt.models import bundle
from tfgt.models import hypermod
from tfgt.models import stylegan

SOURCE_KWARGS = dict(resolution=32, channels=1, dim_z=8, w_dim=8,
                     mapping_layers=2, fmap_base=32, fmap_max=8)
TINY_HYPER = dict(class_width=6, class_depth=2)


@pytest.fixture(scope="module")
def source_bundle(tmp_path_factory):
  """A random unconditional StyleGAN bundle (one merged class)."""
  directory = str(tmp_path_factory.mktemp("source"))
  g = stylegan.StyleGANGenerator(1, **SOURCE_KWARGS)
  d = stylegan.StyleGANDiscriminator(1, resolution=32, channels=1,
                                     fmap_base=32, fmap_max=8)
  architectures.build_by_calling(g, d)
  # A non-zero average w, so that truncation is visible.
  g.w_avg.assign(tf.random.stateless_normal([8], [0, 9]))
  bundle.BundleWriter(directory, g, d, ["merged"], "scratch").save(0)
  return directory


def _generator(source_bundle, num_classes, **options):
  src = methods.load_stylegan_source(source_bundle)
  return src.generator, methods._generator(num_classes, src.generator,
                                           options)


def alignment_batch(z, y):
  return objectives.Batch(images=None, labels=None, z_d=z, y_d=y, z_g=z,
                          y_g=y, index=tf.zeros([z.shape[0]], tf.int64),
                          global_batch_size=z.shape[0], num_replicas=1)


def check_starts_as_the_source(source, g):
  """Checks a 3-class GAN Memory generator `g` of `source` (any source
  architecture) at its start: labels draw the source's images bit for bit,
  class weights to float error (per-sample kernels: another convolution,
  sums in another order), truncation in w with the source's w_avg too,
  and the self-alignment loss (with and without style mixing) is 0.
  Returns (z, labels, the source's images, the loss's parts)."""
  z = tf.random.stateless_normal([6, 8], [1, 2])
  labels = tf.constant([0, 1, 2, 2, 1, 0])
  want = source((z, tf.zeros([6], tf.int32)), training=False).numpy()
  assert np.array_equal(g((z, labels), training=False).numpy(), want)
  weights = tf.constant([[0.2, 0.3, 0.5]] * 6)
  np.testing.assert_allclose(g((z, weights), training=False).numpy(), want,
                             atol=1e-4)
  assert np.array_equal(g.truncated_call((z, labels), 0.5).numpy(),
                        source.truncated_call((z, labels * 0), 0.5).numpy())
  for mixing in (False, True):
    loss, parts = methods.SelfAlignmentLoss(style_mixing=mixing).g_loss(
        alignment_batch(z, labels), g, None)
    assert float(loss) == 0.0
  return z, labels, want, parts


def test_gan_memory_starts_as_the_source_bit_for_bit(source_bundle):
  source, g = _generator(source_bundle, 3, mode="free")
  z, labels, want, parts = check_starts_as_the_source(source, g)
  assert set(parts) == {
      "block_4x4", "block_8x8", "block_16x16", "block_32x32", "l1"}
  # A class whose parameters change no longer draws the source.
  g.modulated_layers[0][1].gamma[1].assign(
      0.5 * g.modulated_layers[0][1].gamma[1])
  changed = g((z, labels), training=False).numpy()
  rows = labels.numpy() == 1
  assert np.array_equal(changed[~rows], want[~rows])
  assert not np.allclose(changed[rows], want[rows])


def check_hypernetwork_generator(g, z, labels):
  """Checks a 2-class hyper-modulated generator (any source architecture):
  labels and their one-hot class weights draw alike, half-and-half weights
  draw something else (v is mixed before the kernels are made), the
  alignment loss of the unaligned hypernetwork is far from 0 and its
  gradient reaches every hypernetwork variable, and a training call leaves
  w_avg alone. Returns the images of the labels."""
  by_label = g((z, labels), training=False)
  by_weights = g((z, tf.one_hot(labels, 2)), training=False)
  np.testing.assert_allclose(by_label.numpy(), by_weights.numpy(), atol=1e-5)
  half = g((z, tf.fill([z.shape[0], 2], 0.5)), training=False).numpy()
  assert not np.allclose(half, by_label.numpy(), atol=1e-3)
  with tf.GradientTape() as tape:
    loss, _ = methods.SelfAlignmentLoss().g_loss(alignment_batch(z, labels),
                                                 g, None)
  c, mods = methods.hypernetwork_variables(g)
  grads = tape.gradient(loss, c + mods)
  assert float(loss) > 0.1
  assert all(gr is not None and np.abs(gr.numpy()).sum() > 0
             for gr in grads)
  w_avg = g.w_avg.numpy()
  g((z, labels), training=True)
  assert np.array_equal(g.w_avg.numpy(), w_avg)
  return by_label


def test_hypernetwork_labels_weights_and_the_alignment_gradient(
    source_bundle):
  _, g = _generator(source_bundle, 2, **TINY_HYPER)
  check_hypernetwork_generator(g, tf.random.stateless_normal([4, 8], [3, 4]),
                               tf.constant([1, 0, 1, 1]))


def test_standardized_bias_mode(source_bundle):
  _, g = _generator(source_bundle, 2, mode="free", bias="standardized")
  layer, _ = g.modulated_layers[0]
  layer.bias.bias.assign(tf.range(layer.bias.bias.shape[0], dtype=tf.float32))
  shift = g.modulation(tf.constant([0, 1]))[g.modulated[0]].bias_shift
  bias = layer.bias.bias * layer.bias.lr_multiplier
  np.testing.assert_allclose(
      (shift + bias).numpy(),
      np.tile(adafm.standardize_bias(bias).numpy(), [2, 1]), atol=1e-6)


def test_sources_and_aligned_runs_that_do_not_fit(source_bundle, tmp_path):
  with pytest.raises(UserInputError, match="unconditional StyleGAN"):
    methods.load_stylegan_source("pretrained:fashion_mnist_biggan")
  src = methods.load_stylegan_source(source_bundle)
  with pytest.raises(UserInputError,
                     match="does not exist.*Run the self-alignment stage"):
    methods.load_aligned(str(tmp_path / "nothing"), src.generator)
  with pytest.raises(UserInputError, match="no self-aligned hypernetwork"):
    methods.load_aligned(source_bundle, src.generator)
  with pytest.raises(UserInputError, match="mode must be one of"):
    methods.HyperModulation(source_bundle, mode="memory")
  with pytest.raises(UserInputError, match="set train_source = True"):
    methods.HyperModulation(source_bundle, from_scratch=True)
  # The transfer loads its source as every transfer method does
  # (TransferMethod.load_source), with its own check of the source's kind.
  with pytest.raises(UserInputError, match="unconditional StyleGAN"):
    methods.HyperModulation("pretrained:fashion_mnist_biggan").build(
        ["T-shirt/top", "new"])
  with pytest.raises(UserInputError, match="at least one new class"):
    methods.GANMemory(source_bundle).build(src.class_names)


def test_discriminator_keeps_the_source_but_its_head(source_bundle):
  src = methods.load_stylegan_source(source_bundle)
  d = methods.conditional_discriminator(src.discriminator, 3)
  assert isinstance(d, hypermod.HyperModDiscriminator) and d.num_classes == 3
  old = {v.path.split("/", 1)[1]: v.numpy()
         for v in src.discriminator.variables}
  for v in d.variables:
    path = v.path.split("/", 1)[1]
    if path.startswith(d.head_prefix):
      assert v.shape[-1] == 3 or v.shape == (3,)
    else:
      np.testing.assert_array_equal(v.numpy(), old[path])


def train_stage(config, model_dir, source_bundle, steps, extra=(),
                strategy=None):
  gin.clear_config()
  train_lib.parse_config(
      [os.path.join("gin_configs", "fashion_mnist", config)],
      [f"SOURCE = '{source_bundle}'", "SelfAlignment.class_width = 6",
       "SelfAlignment.class_depth = 2", "HyperModulation.class_width = 6",
       "HyperModulation.class_depth = 2", "train.batch_size = 4",
       "load_training_data.images_per_class = 8", "train.log_every = 1",
       "train.sample_every = 0", "train.checkpoint_every = 2",
       "train.evaluator = None", f"train.num_steps = {steps}",
       *extra])
  return train_lib.train(str(model_dir), strategy=strategy)


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR),
                    reason="needs dataset-fashion-mnist")
def test_alignment_then_transfer_through_the_trainer(source_bundle,
                                                     tmp_path):
  aligned = tmp_path / "align"
  train_stage("hypermod_align.gin", aligned, source_bundle, 2)
  tags = events(str(aligned))
  assert tags["train/g/l1"] == [1, 2] and "train/d_loss" not in tags
  spec = json.loads((aligned / "model" / bundle.SPEC_FILE).read_text())
  assert spec["architecture"] == "hypermod"
  assert spec["class_names"] == ["fashion-mnist-0-7"]
  assert spec["discriminator"] is None

  # Stage 2 starts from the aligned hypernetwork: every class has the
  # aligned class embedding.
  gin.clear_config()
  train_lib.parse_config(
      [os.path.join("gin_configs", "fashion_mnist", "hypermod.gin")],
      [f"SOURCE = '{source_bundle}'", f"ALIGNED = '{aligned}'"])
  with pytest.raises(UserInputError, match="class_depth: 2 there, 4 here"):
    methods.HyperModulation(source_bundle, aligned=str(aligned),
                            class_width=6).build(["merged", "Bag", "Ankle boot"])
  method = methods.HyperModulation(source_bundle, aligned=str(aligned),
                                   class_width=6, class_depth=2)
  setup = method.build(["merged", "Bag", "Ankle boot"])
  # The official start: the aligned run's trained weights, not its EMA.
  src = methods.load_stylegan_source(source_bundle)
  raw = methods.load_aligned(str(aligned), src.generator, raw=True)
  first, _, _ = bundle.load(str(aligned))
  raw_row = raw.class_network.embedding.numpy()[0]
  assert not np.array_equal(raw_row, first.class_network.embedding.numpy()[0])
  for row in setup.generator.class_network.embedding.numpy():
    np.testing.assert_array_equal(row, raw_row)
  ema = methods.HyperModulation(source_bundle, aligned=str(aligned),
                                aligned_weights="ema", class_width=6,
                                class_depth=2).build(["merged", "Bag"])
  for row in ema.generator.class_network.embedding.numpy():
    np.testing.assert_array_equal(row,
                                  first.class_network.embedding.numpy()[0])
  with pytest.raises(UserInputError, match="aligned_weights = 'ema'"):
    methods.load_aligned(str(aligned / "model"), src.generator, raw=True)
  assert [g.name for g in setup.g_groups] == ["modulators", "class_network"]
  assert not any(v.path.split("/", 2)[1] == "FromRGB_lod0"
                 for v in setup.d_variables)

  # On one device (the alignment ran the modulated synthesis on two
  # replicas already): a second trace on two would double this test's time.
  run = tmp_path / "transfer"
  train_stage("hypermod.gin", run, source_bundle, 2,
         [f"ALIGNED = '{aligned}'", "train.samples_per_class = 2"],
         strategy=tf.distribute.OneDeviceStrategy("/cpu:0"))
  tags = events(str(run))
  assert tags["train/d/r1"] == [1, 2]
  generator, discriminator, spec = bundle.load(str(run),
                                               with_discriminator=True)
  assert spec["class_names"] == ["merged", "Bag", "Ankle boot"]
  assert isinstance(generator, hypermod.HyperModGenerator)
  assert discriminator.num_classes == 3
  picture, ids, _ = sample_lib.draw_grid(str(run), per_class=2)
  assert ids == [0, 1, 2] and picture.shape[0] >= 3 * 32

  # From Bag to Ankle boot through V: the end columns are the labels'
  # images (cells of 32x32 with a 1-pixel border, images.grid).
  picture, ids, _ = sample_lib.draw_interpolation(
      str(run), ["Bag", "2"], steps=3, rows=2, seed=4)
  assert ids == [1, 2] and picture.shape[:2] == (1 + 33 * 2, 1 + 33 * 3)
  z = tf.random.stateless_normal([2, 8], seed=[4, 0])
  for column, label in ((0, 1), (2, 2)):
    want = pipeline.to_uint8(generator((z, tf.fill([2], label)),
                                       training=False)).numpy()
    for row in range(2):
      cell = picture[1 + 33 * row:33 + 33 * row,
                     1 + 33 * column:33 + 33 * column]
      assert np.abs(cell.astype(int) - want[row].astype(int)).max() <= 1
  # The middle column is the draw at class weights (0.5, 0.5) of the two
  # (whether it differs from the ends depends on how far two training steps
  # moved the classes apart).
  half = tf.constant([[0.0, 0.5, 0.5]] * 2)
  want = pipeline.to_uint8(generator((z, half), training=False)).numpy()
  for row in range(2):
    cell = picture[1 + 33 * row:33 + 33 * row, 34:66]
    assert np.abs(cell.astype(int) - want[row].astype(int)).max() <= 1
  with pytest.raises(UserInputError, match="give two classes"):
    sample_lib.draw_interpolation(str(run), ["Bag"])
  with pytest.raises(UserInputError, match="names class 'Bag' twice"):
    sample_lib.draw_interpolation(str(run), ["Bag", "1"])

  # Export: labels and class weights as any generator, checked against the
  # in-process generator.
  target = export_lib.export(str(run), str(tmp_path / "export"))
  loaded = tf.saved_model.load(target)
  z = tf.random.stateless_normal([3, 8], [5, 6])
  labels = tf.constant([0, 1, 2])
  assert_from_z_matches(loaded, generator, z, labels)
  with tf.compat.v1.Session(graph=tf.Graph()) as session:
    meta = tf.compat.v1.saved_model.load(session, ["serve"], target)
    assert "serving_default" in meta.signature_def


def _hypermod_configs():
  folder = os.path.join("gin_configs", "fashion_mnist")
  names = ["hypermod_align.gin", "hypermod.gin", "gan_memory.gin"] + [
      os.path.join("hypermod_ablations", n)
      for n in sorted(os.listdir(os.path.join(folder, "hypermod_ablations")))]
  return [os.path.join(folder, n) for n in names]


@pytest.mark.parametrize("config", _hypermod_configs())
def test_every_hypermod_config_builds(config, source_bundle):
  gin.clear_config()
  params = [f"SOURCE = '{source_bundle}'", "SelfAlignment.class_width = 6",
            "HyperModulation.class_width = 6", "ALIGNED = None"]
  if "align" in os.path.basename(config):
    params.remove("ALIGNED = None")
  train_lib.parse_config([config], params)
  method = gin.query_parameter("train.method").scoped_configurable_fn()
  classes = (["fashion-mnist-0-7"] if isinstance(method, methods.SelfAlignment)
             else ["merged", "Bag", "Ankle boot"])
  setup = method.build(classes)
  g = setup.generator
  assert isinstance(g, hypermod.HyperModGenerator)
  assert g.num_classes == len(classes)
  name = os.path.basename(config)
  assert (setup.discriminator is None) == (name == "hypermod_align.gin")
  assert g.mode == ("free" if name == "gan_memory.gin" else "hypernetwork")
  assert (name == "contrastive.gin") == isinstance(
      setup.objective, contrastive.ContrastiveAdversarial)
  assert (g.class_network is not None and g.class_network.depth == 0) == (
      name == "no_v_space.gin")
  # The source's weights train in FT and S only; S starts from random ones.
  trained = {id(v) for v in setup.g_variables}
  if name in ("finetune.gin", "scratch.gin"):
    assert all(id(v) in trained for v in g.source.trainable_variables)
    assert g.track_w_avg
  else:
    assert not any(id(v) in trained for v in g.source.variables)
    assert not g.track_w_avg
  source = methods.load_stylegan_source(source_bundle).generator
  same = np.array_equal(g.source.synthesis.layer1.conv.kernel.numpy(),
                        source.synthesis.layer1.conv.kernel.numpy())
  assert same == (name != "scratch.gin")


def test_plot_curves_reads_the_runs_events(tmp_path):
  tool = load_tool("plot_curves")
  # Two runs' evaluations as the trainer logs them, one over two sessions.
  for name, sessions in (("a", [[(1, 9.0), (2, 7.0)], [(3, 5.0)]]),
                         ("b", [[(1, 12.0), (3, 11.0)]])):
    for i, values in enumerate(sessions):
      writer = tf.summary.create_file_writer(
          str(tmp_path / name / "train"), filename_suffix=f".{i}")
      with writer.as_default():
        for step, value in values:
          tf.summary.scalar("eval/mfid", value, step=step)
      writer.close()
  runs = tool.parse_runs([f"aligned={tmp_path / 'a'}", str(tmp_path / "b")])
  assert [label for label, _ in runs] == ["aligned", "b"]
  assert tool.curves(runs, "mfid") == {
      "aligned": [[1, 9.0], [2, 7.0], [3, 5.0]], "b": [[1, 12.0], [3, 11.0]]}
  picture = tool.write(runs, "mfid", str(tmp_path / "curves.png"),
                       str(tmp_path / "tb"))
  assert picture.ndim == 3 and (tmp_path / "curves.png").exists()
  images = [v.tag for path in tf.io.gfile.glob(str(tmp_path / "tb" / "*"))
            for e in tf.compat.v1.train.summary_iterator(path)
            for v in e.summary.value]
  assert images == ["curves/mfid"]
  with pytest.raises(UserInputError, match="no eval/fid"):
    tool.curves(runs, "fid")
  with pytest.raises(UserInputError, match="distinct"):
    tool.parse_runs(["x=a", "x=b"])


def test_prepared_serving_draws_the_same_images(source_bundle):
  _, g = _generator(source_bundle, 3, **TINY_HYPER)
  z = tf.random.stateless_normal([4, 8], [7, 8])
  labels = tf.constant([2, 0, 1, 2])
  weights = tf.constant([[0.5, 0.5, 0.0]] * 4)
  before = g((z, labels), training=False).numpy()
  mixed = g((z, weights), training=False).numpy()
  g.prepare_serving()
  assert g.serving_prepared
  assert np.array_equal(g((z, labels), training=False).numpy(), before)
  assert np.array_equal(g((z, weights), training=False).numpy(), mixed)
  # The labels' draw no longer reads the hypernetwork: changing it leaves
  # the prepared images until the next prepare_serving.
  kernel = g.modulated_layers[0][1].modulator.g.kernel
  kernel.assign(kernel * 2.0)
  assert np.array_equal(g((z, labels), training=False).numpy(), before)
  g.prepare_serving()
  assert not np.array_equal(g((z, labels), training=False).numpy(), before)


def test_benchmark_cells_keep_the_protocol_and_the_alignment(tmp_path):
  """cGANTransfer's row runs at the transfer benchmark's protocol (the
  paper's G rate and length); a hypernetwork's starts from its alignment."""
  tool = load_tool("benchmark_hypermod")
  cells = load_tool("benchlib.cells")
  cgan, hyper = tool.cells(str(tmp_path), ["cgantransfer", "hypermod_b"],
                           [100], [0])
  assert cells.cell_params(cgan, None, [])[:2] == [
      "train.g_lr = 2e-4", "train.num_steps = 1200"]
  assert hyper.params == (
      f"ALIGNED = '{tool.align_dir(str(tmp_path), 'b')}'",)
  # The precision row: B's cells in mixed_bfloat16 from the same alignment,
  # run only when named.
  [mixed] = tool.cells(str(tmp_path), ["hypermod_b_mixed_bfloat16"], [100],
                       [0])
  assert mixed.config == hyper.config
  assert mixed.params == hyper.params + (
      "train.precision = 'mixed_bfloat16'",)
  assert "hypermod_b_mixed_bfloat16" not in tool.DEFAULT_METHODS
  # Another source (a StyleGAN2) serves the hypernetwork rows only.
  with pytest.raises(UserInputError, match="cgantransfer row transfers"):
    tool.run_benchmark(str(tmp_path / "sg2"), methods=["hypermod_b",
                                                       "cgantransfer"],
                       source=str(tmp_path / "stylegan2_source"))
  assert not (tmp_path / "sg2").exists()
  assert set(tool.DEFAULT_METHODS) | {"hypermod_b_mixed_bfloat16"} == set(
      tool.METHODS)


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR),
                    reason="needs dataset-fashion-mnist")
def test_benchmark_aligns_then_runs_cells_in_two_processes(source_bundle,
                                                           tmp_path):
  """`tools.benchmark_hypermod` at tiny size: the alignment in this
  process, then GAN Memory and Hyper-Mod B in two child processes at once
  (one intra-op thread each), read back into the tables and figures."""
  tool = load_tool("benchmark_hypermod")
  out_dir = str(tmp_path / "bench")
  records = str(tmp_path / "records")
  # The source through --source (bound as the configs' SOURCE, here and in
  # the children).
  params = ["SelfAlignment.class_width = 6",
            "SelfAlignment.class_depth = 2", "HyperModulation.class_width = 6",
            "HyperModulation.class_depth = 2", "train.batch_size = 4",
            "train.log_every = 1", "train.sample_every = 0",
            "train.checkpoint_every = 2", "train.eval_every = 2",
            "Evaluator.split = 'test'", "Evaluator.num_samples = 40",
            "Evaluator.metrics = ['fid']",
            # The alignment, in this process, on one device (the children
            # are not split); test_alignment_then_transfer_through_the_
            # trainer aligns on two replicas.
            "make_strategy.name = 'default'"]
  flags = ["--methods=gan_memory,hypermod_b", "--images_per_class=8",
           "--seeds=0", "--num_steps=2", "--align_steps=2",
           f"--out_dir={out_dir}", "--rescore_samples=60", "--jobs=2",
           "--ppl_samples=20", f"--record_dir={records}",
           f"--source={source_bundle}"] + [
               f"--gin_param={p}" for p in params]
  rows = tool.run_benchmark(
      out_dir, ["gan_memory", "hypermod_b"], [8], [0], num_steps=2,
      align_steps=2, gin_params=params, command="pytest",
      rescore_samples=60, jobs=2,
      argv=[sys.executable, "-m", "tools.benchmark_hypermod"] + flags,
      source=source_bundle, ppl_samples=20, record_dir=records)
  assert [r["method"] for r in rows] == ["gan_memory", "hypermod_b"]
  for row in rows:
    assert row["intra_op_threads"] == 1  # Trained in a child process.
    assert os.path.exists(os.path.join(out_dir, f"{row['method']}_8_s0.log"))
    best = row["rescored"]["best"]
    assert best["mfid"] > 0 and 0 <= best["mcoverage"] <= 1
    assert row["old_class_fid"] is None  # An unconditional source.
    # Table 3's path length between Bag and Ankle boot, of the best G (two
    # steps from identical classes: tiny; tests/eval/test_ppl.py checks
    # its values).
    assert set(row["ppl"]) == {"ppl_full", "ppl_end"}
    assert all(np.isfinite(v) and v >= 0 for v in row["ppl"].values())
  # Hyper-Mod B started from the alignment run; GAN Memory needs none.
  assert "align_b" in rows[1]["gin_config"]
  assert "align_b" not in rows[0]["gin_config"]
  # Class-specific values: GAN Memory's gamma, beta and bias shift of each
  # modulated layer; Hyper-Mod's one class embedding (width 6).
  assert rows[1]["g_class_specific"] == 6
  assert rows[0]["g_class_specific"] > rows[1]["g_class_specific"]
  with open(os.path.join(out_dir, "results.md")) as f:
    text = f.read()
  assert "| hypermod_b | 1 |" in text and "mKID x100 " in text
  assert "| PPL full | PPL end |" in text
  assert ("the hypernetwork beats GAN Memory: mFID" in text and
          "cannot be decided, fewer than 2 seeds." in text)
  assert "Self-alignment B" in text
  for name in ("curves_8.png", "alignment.png"):
    assert os.path.getsize(os.path.join(out_dir, name)) > 0
  assert tags_of(os.path.join(out_dir, "tb")) >= {"curves_8", "alignment"}
  # Run again: everything is read back, nothing trains.
  again = tool.run_benchmark(
      out_dir, ["gan_memory", "hypermod_b"], [8], [0], num_steps=2,
      align_steps=2, gin_params=params, command="pytest",
      rescore_samples=60, jobs=2, argv=["unused"], source=source_bundle,
      ppl_samples=20, record_dir=records)
  assert again == rows
  # Elsewhere, from the records alone (the run folders gone; the records
  # name the alignment by the --out_dir they ran with): the same rows and
  # the alignment's line.
  assert sorted(os.listdir(records)) == [
      "align_b.json", "gan_memory_8_s0.json", "hypermod_b_8_s0.json"]
  shutil.move(out_dir, str(tmp_path / "gone"))
  elsewhere = out_dir
  assert tool.run_benchmark(
      elsewhere, ["gan_memory", "hypermod_b"], [8], [0], num_steps=2,
      align_steps=2, gin_params=params, command="pytest",
      rescore_samples=60, argv=["unused"], source=source_bundle,
      ppl_samples=20, record_dir=records, report_only=True) == rows
  with open(os.path.join(elsewhere, "results.md")) as f:
    assert "Self-alignment B" in f.read()
  # And from another --out_dir: a record's paths under the out_dir it ran
  # in (its alignment) are read under this one.
  assert tool.run_benchmark(
      str(tmp_path / "other"), ["gan_memory", "hypermod_b"], [8], [0],
      num_steps=2, align_steps=2, gin_params=params, command="pytest",
      rescore_samples=60, argv=["unused"], source=source_bundle,
      ppl_samples=20, record_dir=records, report_only=True) == rows


def tags_of(logdir):
  tags = set()
  for name in os.listdir(logdir):
    for event in tf.compat.v1.train.summary_iterator(
        os.path.join(logdir, name)):
      tags.update(v.tag for v in event.summary.value)
  return tags


def test_benchmark_claims_have_a_verdict_each():
  tool = load_tool("benchmark_hypermod")

  def row(method, seed, mfid, history, ppl_full=None):
    best_step, best_fid = min(history, key=lambda sf: sf[1])
    return dict(method=method, images_per_class=100, seed=seed,
                best_fid=best_fid, best_step=best_step,
                fid_history=history,
                rescored=dict(best=dict(mfid=mfid)),
                ppl=None if ppl_full is None else dict(ppl_full=ppl_full))

  rows = []
  for seed, (b, gm, c, a) in enumerate(((5.0, 8.0, 4.5, 7.0),
                                        (5.5, 8.5, 6.0, 7.5),
                                        (6.0, 9.0, 5.5, 8.0))):
    rows += [row("hypermod_b", seed, b, [[250, 11.0], [500, 9.0]], 3.0),
             row("gan_memory", seed, gm, [[250, 30.0], [500, 10.0]]),
             row("hypermod_c", seed, c, [[250, 25.0], [500, 8.0]]),
             row("hypermod_a", seed, a, [[250, 22.0], [500, 9.5]], 2.0),
             row("hypermod_b_unaligned", seed, 9.0,
                 [[250, 40.0], [500, 12.0]]),
             row("hypermod_b_mixed_bfloat16", seed, b + (0.5, -0.5, 0.0)[seed],
                 [[250, 11.0], [500, 9.0]])]
  text = "\n".join(tool.hypermod_claims(rows, 100))
  # Seed by seed: B is 3.0 better than GAN Memory in every seed.
  assert ("the hypernetwork beats GAN Memory: mFID 5.50 ± 0.50 vs 8.50 ± "
          "0.50: holds (paired over 3 seeds: difference -3.00 ± 0.00, "
          "p = 0).") in text
  assert "the V space (B) beats config A: mFID 5.50 ± 0.50 vs 7.50" in text
  # C - B: -0.5, +0.5, -0.5.
  assert "the contrastive D (C) beats B: mFID 5.33 ± 0.76 vs 5.50 ± 0.50: " \
      "cannot be decided, within the spread (paired over 3 seeds: " \
      "difference -0.17 ± 0.58, p = 0.67)." in text
  assert ("PPL full, B vs A 3.0 ± 0.0 vs 2.0 ± 0.0: does not hold"
          in text)
  # bfloat16 - float32: +0.5, -0.5, 0.0.
  assert ("B in mixed_bfloat16 beats B in float32: mFID 5.50 ± 0.50 vs "
          "5.50 ± 0.50: cannot be decided, within the spread (paired over 3 seeds: "
          "difference +0.00 ± 0.50, p = 1).") in text
  # Self-alignment: FID 12.0 (the worse best) reached at 250 vs 500.
  assert ("self-alignment reaches a given FID sooner (iterations, aligned vs "
          "unaligned; seed 0: FID 12.00 at 250 vs 500") in text
  assert text.endswith("holds.")


def test_shipped_precision_records_give_the_table_of_results(tmp_path):
  """docs/benchmarks/precision_hypermod reports from any --out_dir (the
  records ran in another) and gives the mFID figures docs/RESULTS.md prints
  for Hyper-Modulation in float32 and mixed_bfloat16."""
  tool = load_tool("benchmark_hypermod")
  stats = load_tool("benchlib.stats")
  records = os.path.join(REPO, "docs", "benchmarks", "precision_hypermod")
  methods = ["hypermod_b", "hypermod_b_mixed_bfloat16"]
  rows = tool.run_benchmark(str(tmp_path / "elsewhere"), methods, [100],
                            [0, 1, 2], report_only=True, record_dir=records)
  assert [r["method"] for r in rows] == methods * 3
  with open(os.path.join(REPO, "docs", "RESULTS.md")) as f:
    results = f.read()
  for method in methods:
    mfids = [r["rescored"]["best"]["mfid"] for r in rows
             if r["method"] == method]
    shown = ", ".join(f"{v:.2f}" for v in mfids)
    assert f"{shown} ({stats.fmt_stats(mfids)})" in results, (method, shown)
