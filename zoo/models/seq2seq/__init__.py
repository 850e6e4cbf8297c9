from zoo.models.seq2seq.seq2seq import Seq2Seq
