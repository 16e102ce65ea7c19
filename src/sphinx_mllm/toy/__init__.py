"""The toy world: a procedural world written in real public dataset formats, the tokenizer and
encoder pre-training of its recipe, and the evaluation of a model on held-out worlds.

Modules: :mod:`.world` (ground truth), :mod:`.render` (pixels), :mod:`.language` (captions,
questions, referring expressions), :mod:`.dataset` (the public formats on disk), :mod:`.seeds`
(training vs held-out seeds), :mod:`.evaluate`, :mod:`.tokenizer`, :mod:`.encoders`,
:mod:`.recipe` (``toy train``: every stage of the recipe, resumable).
docs/toy-world.md describes the world and the recipe.
"""

from .dataset import generate_world, world_sources
from .seeds import HELD_OUT_START, check_training_seed, check_training_world, is_held_out

__all__ = ["HELD_OUT_START", "check_training_seed", "check_training_world", "generate_world",
           "is_held_out", "world_sources"]
