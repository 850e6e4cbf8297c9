"""Non-recurrent blocks: the log-mel front end of speech models and its SpecAugment masking, attention mechanisms
over an encoder's states, the cell that attends at every step, the End-to-End Memory Network's sentence encoding,
temporal encoding and memory read, and the recursive networks' tree compositions with the level-wise tree encoder."""

from zoo.layers.attention_functions import sequence_mask
from zoo.layers.attention_mechanism import AttentionMechanism
from zoo.layers.attention_wrapper_cell import ALIGNMENT_INDEX
from zoo.layers.attention_wrapper_cell import ATTENTION_INDEX
from zoo.layers.attention_wrapper_cell import COVERAGE_INDEX
from zoo.layers.attention_wrapper_cell import KEYS_INDEX
from zoo.layers.attention_wrapper_cell import MEMORY_INDEX
from zoo.layers.attention_wrapper_cell import MEMORY_MASK_INDEX
from zoo.layers.attention_wrapper_cell import OUTPUT_INDEX
from zoo.layers.attention_wrapper_cell import AttentionWrapperCell
from zoo.layers.attention_wrapper_cell import coverage
from zoo.layers.attention_wrapper_cell import latest_alignment
from zoo.layers.bahdanau_attention import BahdanauAttention
from zoo.layers.binary_tree_lstm_composition import BinaryTreeLSTMComposition
from zoo.layers.child_sum_tree_lstm_composition import ChildSumTreeLSTMComposition
from zoo.layers.log_mel_spectrogram import LogMelSpectrogram
from zoo.layers.luong_attention import LuongAttention
from zoo.layers.memory_read import MemoryRead
from zoo.layers.sentence_encoding import SentenceEncoding
from zoo.layers.spec_augment import SpecAugment
from zoo.layers.temporal_encoding import TemporalEncoding
from zoo.layers.tree_composition import TreeComposition
from zoo.layers.tree_encoder import TreeEncoder
from zoo.layers.tree_rnn_composition import TreeRNNComposition

__all__ = [
    "ALIGNMENT_INDEX", "ATTENTION_INDEX", "COVERAGE_INDEX", "KEYS_INDEX", "MEMORY_INDEX", "MEMORY_MASK_INDEX",
    "OUTPUT_INDEX",
    "AttentionMechanism", "AttentionWrapperCell", "BahdanauAttention", "BinaryTreeLSTMComposition",
    "ChildSumTreeLSTMComposition", "LogMelSpectrogram", "LuongAttention", "MemoryRead", "SentenceEncoding", "SpecAugment", "TemporalEncoding",
    "TreeComposition", "TreeEncoder", "TreeRNNComposition", "coverage", "latest_alignment", "sequence_mask",
]
