"""Commands around tfgt: benchmarks, checks, figures and shipped data.

Every command is a module of this package, run from the repository root
with tfgt installed (`bash tools/setup.sh` installs it editable):

    python -m tools.benchmark_transfer --help

  benchmark_transfer    cGANTransfer's Table 1 over seeds (docs/RESULTS.md)
  benchmark_hypermod    Hyper-Modulation's Tables 2-5 and Fig. 7
  benchmark_recall      settings of the main job against it, recall and FID
  benchmark_domain      the transfers scored on a second domain (glyphs)
  benchmark_step        images/s and FLOPs of a training step
  benchmark_workers     one process against two local workers
  benchmark_export      the TF Serving export against the in-process G
  benchmark_features    features per second of each feature extractor
  benchmark_modulation  formulations of a class-modulated convolution
  check_determinism     two fresh runs of a configuration, bit for bit
  launch_local_workers  a multi-worker cluster on this machine
  plot_curves           runs' evaluations against the step
  plot_similarity       what a cGANTransfer run learned, as pictures
  measure_feature_check the measurements behind the feature check
  train_fashion_mnist_classifier  the shipped evaluation classifier
  imagenet_class_names  ImageNet's class names in BigGAN's label order

Each module's docstring gives its flags and outputs; `tools.machine` names
the CPU in the benchmarks' tables. The commands import
each other as `from tools import machine`; what the benchmarks of runs over
seeds share (cells, child processes, records, re-scoring, statistics,
reports) is the subpackage `tools.benchlib`. tfgt never imports tools.
`tools/setup.sh` (set-up) and `tools/bazel_test.sh` (Bazel's tests) are
shell scripts, run by path.
"""
