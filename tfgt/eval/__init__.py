"""Sample-quality evaluation: feature extractors, metrics and the evaluator.

Importing this package registers its gin configurables (`Evaluator`,
`FashionMNISTClassifier`, `InceptionHub`, `KerasInceptionV3`), so a config can
say `train.evaluator = @Evaluator()`.

  features   feature networks and streaming extraction
  registry   the metrics the evaluator knows: one `Metric` entry each
  metrics    FID, KID (TF-GAN), KMMD, precision/recall/density/coverage, and
             their entries (fid, kid, mfid, mkid, kmmd, prdc, mprdc)
  ppl        perceptual path length between classes, and its entry (ppl)
  consistency  class consistency and within-class diversity, and their
             entries (mconsistency, mdiversity, mdiversity_pixels)
  separability the feature check: can the features tell the classes apart
  lpips      LPIPS (VGG16, v0.1) from local weight files, and its entry
             (mdiversity_lpips)
  tfgan      TF-GAN's eval functions, imported round its failing package init
  cache      on-disk cache of real-image features
  evaluator  the gin-configurable Evaluator used by the trainer and CLI

Importing the package registers the built-in metrics (through `evaluator`,
which imports `metrics` and `ppl`).
"""

from tfgt.eval import evaluator  # pylint: disable=unused-import
from tfgt.eval import features  # pylint: disable=unused-import
from tfgt.eval.evaluator import Evaluator
