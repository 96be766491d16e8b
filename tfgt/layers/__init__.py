"""Keras 3 layers used by the tfgt models. No training logic lives here."""

from tfgt.layers.attention import SelfAttention
from tfgt.layers.batch_norm import ClassConditionalBatchNorm
from tfgt.layers.batch_norm import ProjectedConditionalBatchNorm
from tfgt.layers.batch_norm import SyncBatchNorm
from tfgt.layers.spectral_norm import SNConv2D
from tfgt.layers.spectral_norm import SNDense
from tfgt.layers.spectral_norm import SNEmbedding
