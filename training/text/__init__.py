"""Text inside the graph: tf-text tokenization and vocabulary tables that travel in SavedModels (files under
`assets/`), built only from TF core and TF Text ops so that stock TF Serving loads the exports."""

from training.text.text_encoder import TextEncoder
from training.text.tokenizer import Tokenizer
from training.text.vocabulary import Vocabulary

__all__ = ["TextEncoder", "Tokenizer", "Vocabulary"]
