//! Decoding: greedy, temperature, top-k, top-p, min-p, sampling and beam search.
