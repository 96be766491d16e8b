"""DeepMind's TF-Hub BigGAN modules as tfgt BigGAN bundles.

The modules `deepmind/biggan-128/2`, `-256/2` and `-512/2` (Brock et al.
2019, TF1 Hub format) hold the ImageNet generator only. `import_tfhub_biggan`
finds one with `hub.resolve` (a handle, a URL, a local folder, or the copy
in TFHUB_CACHE_DIR), reads its variables from the module's checkpoint, maps
them onto `tfgt.models.biggan.BigGANGenerator` and returns the models and a
report; `verify` runs the module's own graph (`hub.load`) beside the
import, once `check_module_graph` has checked every op of it (without
`verify` nothing of the module runs).

The names are those BigGAN-PyTorch's TFHub/converter.py reads (below the
module's root, e.g. `Generator/GBlock_1/conv0/w/ema_b999900`):
  * `linear/w` [N, S]: the shared class embedding (one-hot in, no bias);
  * `Generator/G_Z/G_linear/{w,b,u0}`: the first layer, from the first chunk
    of z, its outputs already in (4, 4, C) order;
  * `Generator/GBlock[_i]/{conv0,conv1,conv_sc}/{w,b,u0}`: block i's
    convolutions ([kh, kw, in, out], tfgt's layout);
  * `Generator/GBlock[_i]/HyperBN[_1]/{gamma,beta}/{w,u0}`: the projections
    of the conditioning vector [z chunk, class embedding] to gain (added to
    1) and shift; tfgt concatenates [class embedding, z chunk], so the rows
    are reordered;
  * `Generator/GBlock[_i]/CrossReplicaBN[_1]/accumulated_{mean,var}` and
    `Generator/ScaledCrossReplicaBNbn/accumulated_{mean,var}`: the batch
    norms' statistics, used as they are (BigGAN-PyTorch's converter does the
    same; `accumulation_counter` is reported, not used);
  * `Generator/attention/{theta,phi,g,o_conv}/{w,u0}` and `gamma`;
  * `Generator/ScaledCrossReplicaBN/{gamma,beta}` and `Generator/conv_2d`.
Weights, biases, gains and the attention gate come twice: the raw variable
and its moving average `<name>/ema_b999900`, which the module samples from
and which is imported by default (`network="G_ema"`; "G" takes the raw
ones). Spectral norm keeps `u0` (output space) and a second vector `u1`,
which is not used. The batch norms' epsilon is 1e-4.

What the weights alone cannot show, and `verify` checks on the real module:
  * spectral norm in inference: like BigGAN-PyTorch's port of the modules,
    the import takes sigma as one power iteration from `u0`
    (`biggan.match_sigma` moves `u0` to the vector that gives that sigma in
    tfgt);
  * the module's `truncation` input: the stored statistics are those of
    untruncated z (the port's notes), so the import is compared with the
    module at truncation 1. tfgt samples other truncations with the same
    statistics.
"""

from __future__ import annotations

import os
import re
from typing import Sequence

import numpy as np

from tfgt.errors import UserInputError
from tfgt.importers import biggan as biggan_pytorch
from tfgt.importers import checkpoint_files
from tfgt.importers import mapping
from tfgt.importers import registry
from tfgt.importers.mapping import Assignment
from tfgt.importers.mapping import Imported
from tfgt.models import architectures
from tfgt.models import biggan

WHAT = "TF-Hub BigGAN (deepmind/biggan-*)"
# The modules' batch-norm epsilon.
BN_EPSILON = 1e-4
# The suffix of the moving-average copy of a weight.
EMA_SUFFIX = "/ema_b999900"
NETWORKS = ("G_ema", "G")
HUB_ROOT = "https://tfhub.dev/"
# The generator's self-attention sits after the block whose output has this
# resolution (BigGAN's ImageNet models; checked against the widths).
ATTENTION_RESOLUTION = {128: 64, 256: 128, 512: 64}
_EXPECTED_UNUSED = {
    r".*/u1": "second spectral-norm vector; sigma comes from u0",
}
_CONV = {"conv0": "conv1", "conv1": "conv2", "conv_sc": "shortcut"}
_ATTENTION = {"theta": "query", "phi": "key", "g": "value",
              "o_conv": "output_conv"}
_STATS = {"mean": "moving_mean", "var": "moving_variance"}


def resolve_handle(handle: str) -> str:
  """A local folder as it is; `deepmind/biggan-128/2` as its tfhub.dev URL;
  URLs as they are.

  Raises:
    UserInputError: a path that is no folder (an archive not unpacked, a
      missing folder), or neither a path nor a handle.
  """
  if os.path.isdir(handle) or "://" in handle:
    return handle
  if os.path.isfile(handle):
    unpack = (" Unpack it (tar -xzf) into a folder and pass the folder."
              if handle.endswith((".tar.gz", ".tgz", ".tar")) else "")
    raise UserInputError(f"--input={handle} is a file; a TF-Hub module is a "
                         f"folder (saved_model.pb, variables/).{unpack}")
  if re.fullmatch(r"[\w.-]+/[\w.-]+/\d+", handle):
    return HUB_ROOT + handle  # A relative folder of this form does not exist.
  if handle.startswith(("/", ".", "~")) or os.sep in handle:
    raise UserInputError(f"--input={handle}: no such folder.")
  raise UserInputError(
      f"--input={handle!r}: neither a folder nor a TF-Hub handle. Give the "
      "module's folder (the one with saved_model.pb and tfhub_module.pb), a "
      "handle such as deepmind/biggan-128/2, or its URL.")


def resolve_module(handle: str) -> str:
  """The module's local folder: `handle` itself if it is a folder, else
  fetched by `hub.resolve` (into TFHUB_CACHE_DIR, or found there).

  Raises:
    UserInputError: the module cannot be fetched, or the folder is not a
      module; the message says how to get it onto the machine.
  """
  import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
  resolved = resolve_handle(handle)
  if not os.path.isdir(resolved):
    try:
      resolved = hub.resolve(resolved)
    except Exception as e:  # pylint: disable=broad-except
      text = str(e).strip()
      reason = type(e).__name__ + (
          f": {text.splitlines()[0][:300]}" if text else "")
      archive = (f"{resolved}?tf-hub-format=compressed"
                 if resolved.startswith(HUB_ROOT) else resolved)
      raise UserInputError(
          f"--input={handle}: TF-Hub could not fetch the module ({reason}). "
          "If you meant a folder, it does not exist. Without access to "
          f"tfhub.dev (now served by Kaggle Models), download {archive} "
          "elsewhere, unpack it (tar -xzf) and pass the folder; or copy the "
          "TFHUB_CACHE_DIR of a machine that loaded it and set "
          "TFHUB_CACHE_DIR to the copy.") from e
  if not os.path.isfile(os.path.join(resolved, "saved_model.pb")):
    raise UserInputError(
        f"{resolved} holds no saved_model.pb: not a TF-Hub module folder. "
        "Unpack the module's .tar.gz (e.g. from "
        "https://tfhub.dev/deepmind/biggan-128/2?tf-hub-format=compressed) "
        "into a folder and pass that folder.")
  return resolved


# The ops that a BigGAN generator's TF1 Hub module is made of: the generator
# in math, array and neural-network ops; its variables with their
# initialisers (random and orthogonal ones included); control flow; and the
# string ops with which its checkpoint saver names files.
_GRAPH_OPS = frozenset("""
    Abs Add AddN AddV2 All Any ArgMax ArgMin Assert Assign AssignAdd AssignSub
    AssignVariableOp AvgPool BatchMatMul BatchMatMulV2 BatchMatMulV3 BiasAdd
    BroadcastArgs BroadcastGradientArgs BroadcastTo Cast Ceil CheckNumerics
    Cholesky ClipByValue Concat ConcatOffset ConcatV2 Const ControlTrigger
    Conv2D Conv2DBackpropInput Cos Cumsum DepthToSpace DepthwiseConv2dNative
    Diag DiagPart Div DivNoNan Einsum Elu Enter Equal Erf Exit Exp ExpandDims
    Fill Floor FloorDiv FloorMod FusedBatchNorm FusedBatchNormV2
    FusedBatchNormV3 Gather GatherNd GatherV2 Greater GreaterEqual Identity
    IdentityN If IsFinite IsVariableInitialized L2Loss LeakyRelu Less LessEqual
    Log Log1p LogSoftmax LogicalAnd LogicalNot LogicalOr LoopCond MatMul
    MatrixBandPart MatrixDiag MatrixDiagPart MatrixDiagPartV3 MatrixDiagV3
    MatrixSetDiag MatrixSetDiagV3 Max MaxPool MaxPoolV2 Maximum Mean Merge Min
    Minimum MirrorPad Mod Mul Neg NextIteration NoOp NotEqual OneHot OnesLike
    Pack Pad PadV2 PartitionedCall Placeholder PlaceholderWithDefault Pow
    PreventGradient Prod Qr RandomShuffle RandomStandardNormal RandomUniform
    RandomUniformInt Range Rank ReadVariableOp RealDiv Reciprocal Relu Relu6
    Reshape ResizeBilinear ResizeNearestNeighbor Reverse ReverseV2 Round Rsqrt
    Select SelectV2 Selu Shape ShapeN ShardedFilename ShardedFilespec Sigmoid
    Sign Sin Size Slice Snapshot Softmax Softplus Softsign SpaceToDepth Split
    SplitV Sqrt Square SquaredDifference Squeeze StatefulPartitionedCall
    StatelessIf StatelessWhile StaticRegexFullMatch StopGradient StridedSlice
    StringJoin Sub Sum Svd Switch Tan Tanh Tile TopKV2 Transpose
    TruncatedNormal Unpack VarHandleOp VarIsInitializedOp Variable VariableV2
    Where While ZerosLike
    """.split())
# The module's checkpoint saver. hub.load restores the variables with its
# restore ops, feeding the module's own variables/ as the saver's filename;
# its save ops are in the graph too, and must be outside everything that
# loading and --verify run.
_CHECKPOINT_READS = frozenset({"RestoreV2", "Restore", "RestoreSlice"})
_CHECKPOINT_WRITES = frozenset({"SaveV2", "Save", "SaveSlices",
                                "MergeV2Checkpoints"})
# Why some ops outside _GRAPH_OPS are refused (for the message; every op
# outside _GRAPH_OPS is refused).
_REFUSED_OPS = {
    **dict.fromkeys(("WriteFile",), "writes files"),
    **dict.fromkeys(("ReadFile", "MatchingFiles", "WholeFileReader",
                     "WholeFileReaderV2", "TextLineReader", "TextLineReaderV2",
                     "FixedLengthRecordReader", "FixedLengthRecordReaderV2",
                     "TFRecordReader", "TFRecordReaderV2", "LMDBReader",
                     "ReaderRead", "ReaderReadV2",
                     "InitializeTableFromTextFile",
                     "InitializeTableFromTextFileV2", "LoadAndRemapMatrix"),
                    "reads files"),
    **dict.fromkeys(("ImmutableConst",), "maps a file into memory"),
    **dict.fromkeys(("PyFunc", "PyFuncStateless", "EagerPyFunc"),
                    "runs Python code"),
    **dict.fromkeys(("Print", "PrintV2"), "prints, or writes a file"),
    **dict.fromkeys(("DebugIdentity", "DebugIdentityV2", "DebugIdentityV3"),
                    "writes debug dumps"),
    **dict.fromkeys(("WriteSummary", "CreateSummaryFileWriter",
                     "SummaryWriter", "WriteScalarSummary", "WriteImageSummary",
                     "WriteHistogramSummary", "WriteAudioSummary",
                     "WriteGraphSummary", "WriteRawProtoSummary", "ImportEvent",
                     "FlushSummaryWriter", "CloseSummaryWriter"),
                    "writes summary files"),
    **dict.fromkeys(("TFRecordDataset", "TFRecordDatasetV2", "TextLineDataset",
                     "FixedLengthRecordDataset", "FixedLengthRecordDatasetV2",
                     "SqlDataset", "ExperimentalSqlDataset", "LMDBDataset",
                     "ExperimentalLMDBDataset", "SaveDataset", "SaveDatasetV2",
                     "LoadDataset", "SnapshotDataset", "SnapshotDatasetV2",
                     "CSVDataset", "CSVDatasetV2", "ExperimentalCSVDataset"),
                    "reads or writes files"),
    **dict.fromkeys(("Send", "Recv", "_Send", "_Recv", "_HostSend",
                     "_HostRecv", "Rpc", "TryRpc", "CollectiveReduce",
                     "CollectiveGather", "CollectiveBcastSend",
                     "CollectiveBcastRecv", "CollectiveReduceV2",
                     "CollectiveGatherV2", "CollectiveBcastSendV2",
                     "CollectiveBcastRecvV2"),
                    "talks to other processes"),
    **dict.fromkeys(_CHECKPOINT_READS, "reads checkpoint files"),
    **dict.fromkeys(_CHECKPOINT_WRITES, "writes checkpoint files"),
}
# The largest saved_model.pb read (a BigGAN module's graph is a few MiB; its
# weights are in variables/).
MAX_GRAPH_BYTES = 512 * 2**20


def _clean(text: str) -> str:
  """A name from the file as one short printable line."""
  text = "".join(c if c.isprintable() else "?" for c in str(text))
  return text if len(text) <= 120 else text[:117] + "..."


def _node(tensor: str) -> str:
  """The node of a tensor or control input name ("^a", "a:1" -> "a")."""
  return tensor.lstrip("^").split(":")[0]


def _loader_roots(meta_graph) -> set[str]:
  """The nodes that hub.load and a signature call may run: the saver's
  restore op and filename, every signature's tensors (the init op's
  included), the nodes named in collections (main_op, legacy_init_op, table
  initialisers) and the variables' initialisers and snapshots."""
  from tensorflow.core.framework import variable_pb2  # pylint: disable=g-import-not-at-top
  from google.protobuf import message  # pylint: disable=g-import-not-at-top
  names = []
  if meta_graph.HasField("saver_def"):
    names += [meta_graph.saver_def.restore_op_name,
              meta_graph.saver_def.filename_tensor_name]
  for signature in meta_graph.signature_def.values():
    infos = list(signature.inputs.values()) + list(signature.outputs.values())
    while infos:
      info = infos.pop()
      names += [info.name, info.coo_sparse.values_tensor_name,
                info.coo_sparse.indices_tensor_name,
                info.coo_sparse.dense_shape_tensor_name]
      infos += list(info.composite_tensor.components)
  for collection in meta_graph.collection_def.values():
    names += list(collection.node_list.value)
    for raw in collection.bytes_list.value:
      try:
        variable = variable_pb2.VariableDef.FromString(raw)
      except message.DecodeError:
        continue
      names += [variable.variable_name, variable.initializer_name,
                variable.snapshot_name, variable.initial_value_name]
  return {_node(name) for name in names if name}


def _upstream(nodes: dict, roots: set[str]) -> set[str]:
  """The nodes that running `roots` runs: their data and control inputs,
  transitively."""
  seen, todo = set(), [r for r in roots if r in nodes]
  while todo:
    name = todo.pop()
    if name in seen:
      continue
    seen.add(name)
    todo += [n for n in map(_node, nodes[name].input) if n in nodes]
  return seen


def _graph_problems(meta_graph) -> list[str]:
  """The ops of one meta graph (and its function library) that a BigGAN
  generator does not need, each as "Op 'name' (why)"."""
  graph = meta_graph.graph_def
  nodes = {node.name: node for node in graph.node}
  filename = (_node(meta_graph.saver_def.filename_tensor_name)
              if meta_graph.HasField("saver_def") else None)
  problems = []
  library = {f.signature.name for f in graph.library.function}

  def judge(node, function=None):
    where = f"{_clean(node.op)} {_clean(node.name)!r}" + (
        f" in function {_clean(function)!r}" if function else "")
    # Call and control-flow ops name their functions in attributes; those
    # must be the module's own (checked below), not ones of this process.
    called = [value.func.name for value in node.attr.values()
              if value.HasField("func")] + [
                  f.name for value in node.attr.values()
                  for f in value.list.func]
    for name in called:
      if name not in library:
        problems.append(f"{where} (calls {_clean(name)!r}, which the module "
                        "does not define)")
    if node.op in _GRAPH_OPS:
      return
    if function is None and node.op in _CHECKPOINT_READS:
      if node.input and _node(node.input[0]) == filename:
        return  # The saver's restore, of the file the loader feeds it.
      problems.append(f"{where} (reads a checkpoint other than the module's "
                      "variables)")
    elif function is None and node.op in _CHECKPOINT_WRITES:
      return  # Checked below: nothing that runs may lead to it.
    else:
      why = _REFUSED_OPS.get(node.op, "not an op of a BigGAN generator")
      problems.append(f"{where} ({why})")

  for node in graph.node:
    judge(node)
  for function in graph.library.function:
    for node in function.node_def:
      judge(node, function.signature.name)
  writes = {name for name, node in nodes.items()
            if node.op in _CHECKPOINT_WRITES}
  if writes:
    for name in sorted(writes & _upstream(nodes, _loader_roots(meta_graph))):
      problems.append(f"{nodes[name].op} {_clean(name)!r} (writes checkpoint "
                      "files, and loading the module would run it)")
  return problems


def check_module_graph(folder: str) -> None:
  """Checks every op of the module's graph before any of it loads or runs.

  hub.load runs the module's restore and init ops, and --verify its
  `default` signature. Every op of every meta graph in saved_model.pb and of
  its function library must be one that a BigGAN generator needs
  (_GRAPH_OPS); file, Python-function, printing, summary, dataset and
  communication ops are refused by name (_REFUSED_OPS). The checkpoint
  saver's ops are allowed where the saver uses them: a restore only of the
  file that the loader feeds as the saver's filename (the module's own
  variables/), and save ops only where nothing that loading or a signature
  runs depends on them; neither inside functions.

  Raises:
    checkpoint_files.UnsafeCheckpointError: ops outside these, all named in
      one line.
    UserInputError: no readable saved_model.pb, or one above
      MAX_GRAPH_BYTES.
  """
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  from google.protobuf import message  # pylint: disable=g-import-not-at-top
  path = os.path.join(folder, "saved_model.pb")
  try:
    size = os.path.getsize(path)
    if size > MAX_GRAPH_BYTES:
      raise UserInputError(f"{path} is {size} bytes, more than the "
                           f"{MAX_GRAPH_BYTES} of a BigGAN module's graph "
                           "(MAX_GRAPH_BYTES): not such a module.")
    with open(path, "rb") as f:
      saved_model = saved_model_pb2.SavedModel.FromString(f.read())
  except (OSError, message.DecodeError) as e:
    raise UserInputError(f"{path} cannot be read as a saved model "
                         f"({type(e).__name__}): not a TF-Hub module, or an "
                         "incomplete one.") from None
  problems = []
  for meta_graph in saved_model.meta_graphs:
    problems += _graph_problems(meta_graph)
  if problems:
    shown = ", ".join(problems[:6]) + (
        f" and {len(problems) - 6} more" if len(problems) > 6 else "")
    raise checkpoint_files.UnsafeCheckpointError(
        f"{folder}: --verify runs the module's graph, and it holds ops that "
        f"a BigGAN generator does not use: {shown}. Nothing of it was loaded "
        "or run. Import without --verify (which only reads the variables) "
        "or use DeepMind's own module.")


def load_module(folder: str):
  """The module at `folder` (resolve_module's) loaded by `hub.load`, to run
  its `default` signature (TF1 Hub format, tags []), once its graph has
  passed check_module_graph.

  Raises:
    checkpoint_files.UnsafeCheckpointError: ops that a BigGAN generator does
      not use (nothing is loaded).
    UserInputError: a graph that TF-Hub cannot load.
  """
  import logging  # pylint: disable=g-import-not-at-top
  import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
  check_module_graph(folder)
  # TF warns once per reference variable of a TF1 module (every variable of
  # 2018's modules) that it has no Python object; the graph runs anyway.
  tf_logger = logging.getLogger("tensorflow")
  level = tf_logger.level
  tf_logger.setLevel(logging.ERROR)
  try:
    return hub.load(folder)
  except Exception as e:  # pylint: disable=broad-except
    raise UserInputError(f"{folder}: TF-Hub cannot load this module "
                         f"({type(e).__name__}: "
                         f"{' '.join(str(e).split())[:300]}).") from e
  finally:
    tf_logger.setLevel(level)


def module_arrays(folder: str) -> dict[str, np.ndarray]:
  """The module's variables by name (as in its graph, without a leading
  "module/"), read from its checkpoint `variables/variables`. The sizes
  its index declares are checked against its data files before any is
  read.

  Raises:
    UserInputError: no readable checkpoint, no variables in it, variables
      that are not numbers, or more bytes declared than the data files hold.
  """
  import glob  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  prefix = os.path.join(folder, "variables", "variables")
  try:
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
  except Exception as e:  # pylint: disable=broad-except
    raise UserInputError(f"{folder}: no readable variables/variables "
                         f"checkpoint ({type(e).__name__}); is the module "
                         "unpacked completely?") from e
  declared = 0
  for name, shape in shapes.items():
    dtype = dtypes[name]
    if not (dtype.is_floating or dtype.is_integer or dtype.is_bool):
      raise UserInputError(f"{folder}: the variable {_clean(name)!r} holds "
                           f"{dtype.name} values: not a BigGAN generator "
                           "module.")
    declared += int(np.prod(shape, dtype=object)) * dtype.size
  stored = sum(os.path.getsize(p) for p in glob.glob(glob.escape(prefix)
                                                     + ".data-*"))
  if declared > stored:
    raise UserInputError(f"{folder}: the module's variables declare "
                         f"{declared} bytes, more than the {stored} of its "
                         "variables/variables.data-* files: the module is "
                         "incomplete or damaged.")
  try:
    arrays = {re.sub(r"^module/", "", name): reader.get_tensor(name)
              for name in sorted(shapes)}
  except Exception as e:  # pylint: disable=broad-except
    raise UserInputError(f"{folder}: the variables/ checkpoint cannot be read "
                         f"({type(e).__name__}); the module is incomplete or "
                         "damaged.") from e
  if not arrays:
    raise UserInputError(f"{folder}: the module holds no variables: not a "
                         "BigGAN generator module.")
  return arrays


def _block_index(scope: str) -> int:
  """GBlock -> 0, GBlock_3 -> 3."""
  return int(scope[len("GBlock_"):]) if scope != "GBlock" else 0


def _sn_rule(prefix: str, kind: str, value: np.ndarray
             ) -> tuple[str, np.ndarray, str] | None:
  """A spectrally normalised layer's w, b or u0 (layouts as tfgt's)."""
  if kind == "w":
    return f"{prefix}/kernel", value, ""
  if kind == "b":
    return f"{prefix}/bias", value.reshape(-1), ""
  if kind == "u0":
    return f"{prefix}/sn_u", value.reshape(1, -1), ""
  return None


def generator_rule(name: str, value: np.ndarray, z_chunk: int
                   ) -> tuple[str, np.ndarray, str] | None:
  """The tfgt variable, array and note for the module's array `name` (the
  weight's name without EMA_SUFFIX); None when it has no place.
  `z_chunk`: the width of z's chunk in each batch norm's condition."""
  if name == "linear/w":
    return "shared_embedding/embeddings", value, ""
  m = re.fullmatch(r"Generator/G_Z/G_linear/(\w+)", name)
  if m:
    return _sn_rule("linear", m.group(1), value)
  m = re.fullmatch(r"Generator/(GBlock(?:_\d+)?)/(conv0|conv1|conv_sc)/(\w+)",
                   name)
  if m:
    return _sn_rule(f"block{_block_index(m.group(1))}/{_CONV[m.group(2)]}",
                    m.group(3), value)
  m = re.fullmatch(r"Generator/(GBlock(?:_\d+)?)/HyperBN(_1)?/(gamma|beta)/"
                   r"(\w+)", name)
  if m:
    layer = "gain_projection" if m.group(3) == "gamma" else "shift_projection"
    prefix = (f"block{_block_index(m.group(1))}/"
              f"{'bn2' if m.group(2) else 'bn1'}/{layer}")
    if m.group(4) == "w":
      return (f"{prefix}/kernel", np.concatenate(
          [value[z_chunk:], value[:z_chunk]]),
              "rows [z chunk, class embedding] -> [class embedding, z chunk]")
    return _sn_rule(prefix, m.group(4), value)
  m = re.fullmatch(r"Generator/(GBlock(?:_\d+)?)/CrossReplicaBN(_1)?/"
                   r"accumulated_(mean|var)", name)
  if m:
    return (f"block{_block_index(m.group(1))}/"
            f"{'bn2' if m.group(2) else 'bn1'}/{_STATS[m.group(3)]}",
            value.reshape(-1), "")
  m = re.fullmatch(r"Generator/attention/(theta|phi|g|o_conv)/(\w+)", name)
  if m:
    return _sn_rule(f"attention/{_ATTENTION[m.group(1)]}", m.group(2), value)
  if name == "Generator/attention/gamma":
    return "attention/gate", value.reshape(()), ""
  m = re.fullmatch(r"Generator/ScaledCrossReplicaBN/(gamma|beta)", name)
  if m:
    return f"output_bn/{m.group(1)}", value.reshape(-1), ""
  m = re.fullmatch(r"Generator/ScaledCrossReplicaBNbn/accumulated_(mean|var)",
                   name)
  if m:
    return f"output_bn/{_STATS[m.group(1)]}", value.reshape(-1), ""
  m = re.fullmatch(r"Generator/conv_2d/(\w+)", name)
  if m:
    return _sn_rule("output_conv", m.group(1), value)
  return None


def select_network(arrays: dict[str, np.ndarray], network: str
                   ) -> tuple[list[tuple[str, str, np.ndarray]],
                              list[Assignment]]:
  """([(source name, weight name, array)] of the chosen copy of every
  weight, report rows of the other copy).

  Raises:
    UserInputError: an unknown `network`, or G_ema from a module without
      moving averages.
  """
  if network not in NETWORKS:
    raise UserInputError(f"--network={network!r}: a TF-Hub BigGAN has "
                         f"{' or '.join(NETWORKS)}.")
  averaged = {n[:-len(EMA_SUFFIX)] for n in arrays if n.endswith(EMA_SUFFIX)}
  if network == "G_ema" and not averaged:
    raise UserInputError(f"The module has no moving-average weights "
                         f"(*{EMA_SUFFIX}); pass --network=G.")
  chosen, skipped = [], []
  for source, value in arrays.items():
    if source.endswith("/accumulation_counter"):
      skipped.append(Assignment(
          source, value.shape, None,
          f"unused: batches accumulated: {float(np.sum(value)):g}; the "
          "statistics are used as stored"))
      continue
    if source.endswith(EMA_SUFFIX):
      name, use = source[:-len(EMA_SUFFIX)], network == "G_ema"
      reason = "moving average; --network=G_ema imports it"
    else:
      name, use = source, network == "G" or source not in averaged
      reason = "raw weight; --network=G imports it"
    if use:
      chosen.append((source, name, value))
    else:
      skipped.append(Assignment(source, value.shape, None,
                                f"unused: {reason}"))
  return chosen, skipped


def generator_kwargs(arrays: dict[str, np.ndarray]) -> dict:
  """The BigGANGenerator arguments (and "num_classes") read from the
  weights' shapes (`arrays` by weight name, as select_network gives them).

  Raises:
    UserInputError: the arrays are not those of a BigGAN module.
  """
  for needed in ("linear/w", "Generator/G_Z/G_linear/w",
                 "Generator/GBlock/conv0/w", "Generator/GBlock/HyperBN/gamma/w",
                 "Generator/conv_2d/w"):
    if needed not in arrays:
      raise UserInputError(f"The module has no {needed}: not a BigGAN "
                           "generator module (deepmind/biggan-*; "
                           "BigGAN-deep is not supported).")
  blocks = sorted({_block_index(m.group(1)) for n in arrays if (
      m := re.fullmatch(r"Generator/(GBlock(?:_\d+)?)/conv0/w", n))})
  resolution = next((r for r, arch in biggan.ARCHITECTURES.items()
                     if len(arch[0]) - 1 == len(blocks)), None)
  if resolution is None or blocks != list(range(len(blocks))):
    raise UserInputError(
        f"The module has generator blocks {blocks}; tfgt's BigGAN has "
        f"{sorted(biggan.ARCHITECTURES)} px models of "
        f"{[len(a[0]) - 1 for a in biggan.ARCHITECTURES.values()]} blocks.")
  g_arch = biggan.ARCHITECTURES[resolution][0]
  conv0 = arrays["Generator/GBlock/conv0/w"]
  ch, rest = divmod(int(conv0.shape[2]), g_arch[0])
  if rest:
    raise UserInputError(f"Block 0 takes {conv0.shape[2]} channels, not a "
                         f"multiple of {g_arch[0]}.")
  num_classes, shared_dim = (int(s) for s in arrays["linear/w"].shape)
  z_chunk = int(arrays["Generator/G_Z/G_linear/w"].shape[0])
  condition = int(arrays["Generator/GBlock/HyperBN/gamma/w"].shape[0])
  if condition != z_chunk + shared_dim:
    raise UserInputError(
        f"The batch norms read {condition} values; a hierarchical-z BigGAN "
        f"reads the {z_chunk} of its z chunk and the {shared_dim} of the "
        "class embedding.")
  kwargs = dict(resolution=resolution,
                channels=int(arrays["Generator/conv_2d/w"].shape[-1]), ch=ch,
                dim_z=z_chunk * (len(blocks) + 1),
                conditioning="shared_embedding", shared_dim=shared_dim,
                hierarchical_z=True, bn_epsilon=BN_EPSILON,
                attention_resolution=0, num_classes=num_classes)
  theta = arrays.get("Generator/attention/theta/w")
  if theta is not None:
    at = ATTENTION_RESOLUTION.get(resolution, 0)
    if not at:
      raise UserInputError(
          f"The module has self-attention, which tfgt places only in the "
          f"{sorted(ATTENTION_RESOLUTION)} px models; this one is "
          f"{resolution} px.")
    width = g_arch[int(np.log2(at // 4))] * ch  # The block's output.
    if theta.shape[2] != width:
      raise UserInputError(
          f"The attention layer takes {theta.shape[2]} channels; tfgt's "
          f"{resolution} px BigGAN has attention after the block of {at} px, "
          f"of {width} channels.")
    kwargs["attention_resolution"] = at
  return kwargs


def fresh_discriminator(num_classes: int, resolution: int, channels: int,
                        ch: int) -> biggan.BigGANDiscriminator:
  """BigGAN's ImageNet discriminator of these sizes, untrained (attention at
  64 px)."""
  return biggan.BigGANDiscriminator(num_classes, resolution=resolution,
                                    channels=channels, ch=ch,
                                    attention_resolution=64)


def import_tfhub_biggan(handle: str, network: str = "G_ema",
                        class_names: Sequence[str] | None = None,
                        discriminator: str | None = None) -> Imported:
  """The generator of a TF-Hub BigGAN module as a tfgt model.

  Args:
    handle: the module's folder, handle (`deepmind/biggan-128/2`) or URL.
    network: "G_ema" (the moving-average weights the module samples from)
      or "G" (the raw ones).
    class_names: one name per class (default: ImageNet's names for a module
      of 1000 classes, else "class_<i>").
    discriminator: a BigGAN-PyTorch D.pth of the same classes and resolution
      (e.g. of the 128 px ImageNet run); without it the bundle gets a fresh,
      untrained discriminator, since the module has none.

  Returns:
    The models, class names and the report.

  Raises:
    UserInputError: a module that cannot be loaded or is not a BigGAN
      generator, a name count that does not fit, a discriminator of another
      model.
  """
  chosen, skipped = select_network(module_arrays(resolve_module(handle)),
                                   network)
  weights = {name: value for _, name, value in chosen}
  kwargs = generator_kwargs(weights)
  num_classes = kwargs.pop("num_classes")
  if class_names is None:
    class_names = biggan_pytorch.default_class_names(num_classes)
  class_names = list(class_names)
  if len(class_names) != num_classes:
    raise UserInputError(f"{handle}: the module has {num_classes} classes; "
                         f"{len(class_names)} class names were given "
                         "(--class_names / --class_names_file).")
  generator = biggan.BigGANGenerator(num_classes, **kwargs)
  if discriminator is not None:
    d_model, d_arrays = biggan_pytorch.read_discriminator(
        discriminator, num_classes, kwargs["resolution"], handle)
  else:
    d_model = fresh_discriminator(num_classes, kwargs["resolution"],
                                  kwargs["channels"], kwargs["ch"])
  architectures.build_by_calling(generator, d_model)
  notes: dict[str, str] = {}
  matched = biggan_pytorch.match_spectral_norms(
      weights, notes, separator="/", weight="w",
      as_out_in=lambda w: w.reshape(-1, w.shape[-1]).T,
      whose="the module's")
  z_chunk = kwargs["dim_z"] // (len(generator.blocks) + 1)

  rule = biggan_pytorch.noted(
      lambda name, value: generator_rule(name, value, z_chunk), notes)
  report: list[Assignment] = []
  mapping.assign(generator.name, generator.variables,
                 [(source, name, matched[name], rule)
                  for source, name, _ in chosen], report, handle, WHAT,
                 _EXPECTED_UNUSED)
  report += skipped
  if discriminator is not None:
    biggan_pytorch.assign_discriminator(d_model, d_arrays, discriminator,
                                        report)
  else:
    report.append(Assignment(
        "(none: the module has no discriminator)", (),
        f"{d_model.name}/* ({len(d_model.variables)} variables)",
        "fresh, untrained; --discriminator=D.pth imports BigGAN-PyTorch's"))
  return Imported(generator, d_model, class_names, report,
                  fresh_discriminator=discriminator is None)


def verify(module, generator, num_samples: int = 4, seed: int = 0,
           truncation: float = 1.0) -> float:
  """The largest pixel difference between the module and `generator` on the
  same inputs: z drawn from the normal truncated to [-2, 2] (as the modules
  are sampled), times `truncation`; random one-hot classes.

  Returns:
    max |module - import| over all pixels, in the images' [-1, 1] units
    (float32 round-off: 6.85e-07 on the tests' 128 px stand-in module,
    docs/IMPORT.md; a G import differs by design, since the module draws
    with G_ema).

  Raises:
    UserInputError: the module's `default` signature does not take z, y and
      truncation.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  signature = module.signatures.get("default") if hasattr(
      module, "signatures") else None
  inputs = set(signature.structured_input_signature[1]) if signature else set()
  if inputs != {"z", "y", "truncation"}:
    raise UserInputError(f"The module's default signature takes "
                         f"{sorted(inputs) or 'nothing'}, not z, y and "
                         "truncation: not a BigGAN module.")
  rng = np.random.default_rng(seed)
  z = rng.standard_normal([num_samples, generator.dim_z])
  while np.any(outside := np.abs(z) > 2):  # Redraw values outside [-2, 2].
    z[outside] = rng.standard_normal(int(outside.sum()))
  z = (truncation * z).astype(np.float32)
  labels = rng.integers(0, generator.num_classes, num_samples)
  y = np.eye(generator.num_classes, dtype=np.float32)[labels]
  theirs = signature(z=tf.constant(z), y=tf.constant(y),
                     truncation=tf.constant(truncation, tf.float32))
  theirs = next(iter(theirs.values())).numpy()
  ours = generator((z, labels), training=False).numpy()
  if theirs.shape != ours.shape:
    raise UserInputError(f"The module draws images of shape "
                         f"{list(theirs.shape)}, the import "
                         f"{list(ours.shape)}.")
  return float(np.max(np.abs(theirs - ours)))


def _read(request: registry.Request) -> Imported:
  biggan_pytorch.check_discriminator_file(request.discriminator)
  return import_tfhub_biggan(request.input, request.network,
                             request.class_names, request.discriminator)


def _verify(handle: str, imported: Imported) -> float:
  """`verify` of the module at `handle` (after `check_module_graph`)."""
  return verify(load_module(resolve_module(handle)), imported.generator)


IMPORTER = registry.Importer(
    name="tfhub_biggan",
    description=("DeepMind's BigGAN modules on TF-Hub (deepmind/biggan-128/2, "
                 "-256/2, -512/2) by folder, handle or URL: generator only"),
    read=_read,
    default_network=NETWORKS[0],
    other_networks=NETWORKS[1:],
    example=("--input=deepmind/biggan-128/2 --out=sources/biggan_imagenet_128"
             " --verify"),
    options={
        "discriminator": ("a BigGAN-PyTorch D.pth of the same model "
                          "(default: a fresh, untrained one)"),
        "verify": (
            "run the module's own graph (hub.load and its default "
            "signature) beside the import on the same inputs and print the "
            "largest pixel difference. Before anything of it loads, every op "
            "of the graph and its function library is checked against the "
            "ops a BigGAN generator needs; file, Python-function and other "
            "side-effecting ops are refused. Without --verify nothing of the "
            "module runs (only its variables are read)")},
    verify=_verify,
    sources=(registry.Source(
        "biggan_imagenet_128", "--input=deepmind/biggan-128/2",
        "DeepMind's own weights, an untrained discriminator"),))
