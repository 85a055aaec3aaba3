//! (layer: being written.)
