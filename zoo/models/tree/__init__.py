from zoo.models.tree.tree_model import TreeModel

__all__ = ["TreeModel"]
