"""Transfer methods. Each turns a source model into a target model and states
what trains and which extra losses apply; the trainer knows none of them.

Importing this package registers every method with gin.
"""

from tfgt.methods import bsa  # pylint: disable=unused-import
from tfgt.methods import cgantransfer  # pylint: disable=unused-import
from tfgt.methods import finetune  # pylint: disable=unused-import
from tfgt.methods import scratch  # pylint: disable=unused-import
