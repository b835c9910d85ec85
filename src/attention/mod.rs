//! Attention: scaled dot-product, multi-head, self-attention, grouped/multi-query, KV caches.
