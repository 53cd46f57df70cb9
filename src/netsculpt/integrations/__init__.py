"""Drop-in integration of netsculpt compression with existing trainers (optional extras).

* ``netsculpt.integrations.hf``: Hugging Face ``transformers`` — ``NetsculptTrainer`` (a ``Trainer`` that adds
  ``ctrl.loss()``), ``NetsculptCallback`` and ``CompressionLossMixin`` for your own ``Trainer`` subclass.
* ``netsculpt.integrations.lightning``: PyTorch Lightning — ``NetsculptLightningCallback``.

Each steps ``ctrl.scheduler`` per optimizer step and per epoch, saves ``ctrl.get_compression_state()`` with the
trainer's checkpoints and exports to ONNX at the end. Neither framework is imported until its classes are used:
``pip install 'netsculpt[integrations]'`` installs them. See docs/INTEGRATIONS.md.
"""

from __future__ import annotations

from netsculpt.integrations._common import (
    CHECKPOINT_KEY,
    STATE_FILE,
    CompressionDriver,
    load_compression_state,
    save_compression_state,
)

__all__ = ["CHECKPOINT_KEY", "STATE_FILE", "CompressionDriver", "load_compression_state", "save_compression_state"]
