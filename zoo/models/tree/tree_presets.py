"""Presets of TreeModel: plain data; the caller passes the sizes that come from the data (vocab_size, num_classes)
and the tallest tree the pipeline feeds (max_height)."""

TREE_PRESETS = {
    # Socher et al. 2011: h = tanh([h_l; h_r] W + b) over the children, a leaf's h from its word vector.
    # The word vector is a leaf's state, so embedding_dim = units.
    "tree_rnn": {"composition": "tree_rnn", "units": 150, "embedding_dim": 150},
    # The binary (N-ary, N = 2) Tree-LSTM of Tai, Socher & Manning 2015: 150 units for sentiment (their Table 1 and
    # §5.2: 300-dimensional GloVe vectors in, a separate forget gate per child).
    "tree_lstm": {"composition": "binary_tree_lstm", "units": 150, "embedding_dim": 300},
    # The Child-Sum Tree-LSTM of the same paper (168 units for sentiment there, so that it has about as many weights
    # as the 150-unit binary one); any number of children, each its own forget gate, the children's h summed.
    "child_sum_tree_lstm": {"composition": "child_sum_tree_lstm", "units": 168, "embedding_dim": 300},
}
