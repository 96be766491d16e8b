"""tfgt: transfer pretrained GANs to new classes from a few images.

Sub-packages:
  layers:  Keras 3 layers (spectral norm, conditional batch norm, attention).
  models:  generators and discriminators built from the layers (BigGAN).
  methods: transfer methods; each turns a source model into a target model.
  data:    tf.data pipelines (Fashion-MNIST IDX files, image folders, TFDS).
  eval:    feature extractors and sample-quality metrics.
"""

__version__ = "0.1.0"
