"""ListenAttendSpell: an attention encoder-decoder from audio to characters."""
