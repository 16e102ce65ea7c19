"""Adapters that let the evaluation harnesses the field uses drive our pipeline.

* :mod:`.lmms_eval_model`: an lmms-eval model (``SphinxLMMs``), registered by
  :func:`~.lmms_eval_model.register` or through :func:`~.lmms_eval_model.manifest`.
* :mod:`.vlmeval_model`: a VLMEvalKit model class (``SphinxVLM``).

Neither harness is a dependency: each module imports its harness only when the harness-facing
class is first used, so both import (and their cores can be tested) without the harness installed.
"""
