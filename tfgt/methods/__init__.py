"""Methods. Each builds the models of a run (from a source model, or from
scratch) and states what trains and with which objective; the trainer knows
none of them (`tfgt.methods.base`).

Importing this package registers every method with gin.
"""

from tfgt.methods import bsa  # pylint: disable=unused-import
from tfgt.methods import cgantransfer  # pylint: disable=unused-import
from tfgt.methods import contrastive  # pylint: disable=unused-import
from tfgt.methods import finetune  # pylint: disable=unused-import
from tfgt.methods import hypermod  # pylint: disable=unused-import
from tfgt.methods import scratch  # pylint: disable=unused-import
