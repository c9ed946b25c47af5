//! Loom models of the order state machine: every interleaving of a baker
//! finishing, cancelling or dropping an order against its handle joining,
//! cancelling, or being dropped.
