"""Sample-quality evaluation: feature extractors, metrics and the evaluator.

Importing this package registers its gin configurables (`Evaluator`,
`FashionMNISTClassifier`, `InceptionHub`, `KerasInceptionV3`), so a config can
say `train.evaluator = @Evaluator()`.

  features   feature networks and streaming extraction
  metrics    FID, KID (TF-GAN), KMMD, precision/recall/density/coverage
  tfgan      TF-GAN's eval functions, imported round its failing package init
  cache      on-disk cache of real-image features
  evaluator  the gin-configurable Evaluator used by the trainer and CLI
"""

from tfgt.eval import evaluator  # pylint: disable=unused-import
from tfgt.eval import features  # pylint: disable=unused-import
from tfgt.eval.evaluator import Evaluator
